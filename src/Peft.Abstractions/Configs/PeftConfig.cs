using System.Text.Json;
using System.Text.Json.Serialization;

namespace Peft;

/// <summary>
/// Fields every <c>adapter_config.json</c> carries. A method derives its own config from this
/// record; keys neither knows are kept in <see cref="ExtensionData"/> and written back on save,
/// so a config read from Hugging Face PEFT round-trips unchanged.
/// </summary>
public abstract record PeftConfig
{
    /// <summary>The method this config belongs to.</summary>
    [JsonPropertyName("peft_type")]
    public abstract PeftType PeftType { get; }

    /// <summary>The task the adapted model performs; decides which head and inputs apply.</summary>
    [JsonPropertyName("task_type")]
    public TaskType? TaskType { get; init; }

    /// <summary>Where the base model came from, informational.</summary>
    [JsonPropertyName("base_model_name_or_path")]
    public string? BaseModelNameOrPath { get; init; }

    /// <summary>Revision of the base model, informational.</summary>
    [JsonPropertyName("revision")]
    public string? Revision { get; init; }

    /// <summary>True when the adapter was saved for inference only.</summary>
    [JsonPropertyName("inference_mode")]
    public bool InferenceMode { get; init; }

    /// <summary>Version of the library that wrote the config.</summary>
    [JsonPropertyName("peft_version")]
    public string? PeftVersion { get; init; }

    /// <summary>Keys this library does not model, kept verbatim.</summary>
    [JsonExtensionData]
    public Dictionary<string, JsonElement>? ExtensionData { get; init; }

    /// <summary>
    /// Checks the config on its own (ranges, conflicting fields) and throws
    /// <see cref="PeftConfigException"/> naming the offending fields. Called before injection.
    /// </summary>
    public virtual void Validate()
    {
    }
}

/// <summary>A config that cannot be used as written: the message names the field(s) at fault.</summary>
public sealed class PeftConfigException(string message) : Exception(message);
