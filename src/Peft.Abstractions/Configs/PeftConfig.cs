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

    /// <summary>
    /// For adapters without a task type, the transformers class and module of the base model
    /// (<c>base_model_class</c>, <c>parent_library</c>), so that Python's AutoPeftModel can rebuild it.
    /// </summary>
    [JsonPropertyName("auto_mapping")]
    public IReadOnlyDictionary<string, string>? AutoMapping { get; init; }

    /// <summary>Version of the library that wrote the config.</summary>
    [JsonPropertyName("peft_version")]
    public string? PeftVersion { get; init; }

    /// <summary>
    /// Set when the adapter's weights will be loaded from a checkpoint (from_pretrained,
    /// load_adapter): options that only decide how new weights start are then not checked. Not saved.
    /// </summary>
    [JsonIgnore]
    public bool WeightsFromCheckpoint { get; init; }

    /// <summary>Keys this library does not model, kept verbatim.</summary>
    [JsonExtensionData]
    public Dictionary<string, JsonElement>? ExtensionData { get; init; }

    /// <summary>
    /// Fields of the reference's config (and of later PEFT versions) that this library does not
    /// implement, each with what it would change. A config that sets one to anything but its inert
    /// value (null, false, an empty list or object) is refused by <see cref="Validate"/>, naming
    /// field and value: never a silent change of meaning. docs/COMPATIBILITY.md lists them.
    /// </summary>
    protected virtual IReadOnlyDictionary<string, string> UnimplementedFields { get; } = new Dictionary<string, string>();

    /// <summary>
    /// Fields of the reference's config that this library knows and that cannot change its results
    /// (settings of features only the refused fields enable, loading hints): kept, saved back, not warned about.
    /// </summary>
    protected virtual IReadOnlySet<string> HarmlessFields { get; } = new HashSet<string>();

    /// <summary>
    /// Checks the config on its own (ranges, conflicting fields, unimplemented reference fields) and
    /// throws <see cref="PeftConfigException"/> naming the offending fields. Called before injection.
    /// </summary>
    public virtual void Validate()
    {
        foreach (var (key, value) in ExtensionData ?? [])
        {
            if (UnimplementedFields.TryGetValue(key, out var meaning) && !IsInert(value))
            {
                throw new PeftConfigException(
                    $"`{key}` = {value.GetRawText()} is not implemented by the {PeftType} plugin of this library ({meaning}); remove it or set it to {InertValue(value)}.");
            }
        }
    }

    /// <summary>
    /// The sizes whose tensors an adapter file must hold (LoRA's <c>r</c>, prompt learning's <c>num_virtual_tokens</c>),
    /// checked against the file's header by <see cref="CheckAgainstWeights"/> before the adapter is built.
    /// </summary>
    protected virtual IEnumerable<ConfigSize> DeclaredSizes() => [];

    /// <summary>
    /// Refuses sizes the saved weights cannot back (<c>r</c> 10^6 beside a 4 KB adapter) from the header alone, so that
    /// loading a corrupt config costs no allocation: the loader calls it before attaching the adapter.
    /// </summary>
    /// <param name="source">adapter_config.json, for messages.</param>
    /// <param name="weightsSource">adapter_model.safetensors, for messages.</param>
    /// <param name="tensors">Every saved tensor's name and shape.</param>
    /// <exception cref="PeftConfigException">A size exceeds what the weights hold.</exception>
    public void CheckAgainstWeights(string source, string weightsSource, IReadOnlyCollection<(string Name, IReadOnlyList<long> Shape)> tensors)
    {
        if (ConfigSizes.Unbacked(DeclaredSizes(), weightsSource, tensors) is { } problem) throw new PeftConfigException($"{source} {problem}");
    }

    /// <summary>Deserializes an adapter_config.json as <typeparamref name="TConfig"/>, warning about fields it does not know.</summary>
    /// <param name="json">The file's root object.</param>
    /// <param name="source">The file, for messages.</param>
    /// <exception cref="PeftConfigException">The JSON does not fit <typeparamref name="TConfig"/>; the message names the source.</exception>
    public static TConfig Parse<TConfig>(System.Text.Json.JsonElement json, string source) where TConfig : PeftConfig
    {
        try
        {
            var config = System.Text.Json.JsonSerializer.Deserialize<TConfig>(json, PeftJson.Options) ?? throw new PeftConfigException($"{source}: empty adapter config.");
            config.WarnAboutUnknownFields(source);
            return config;
        }
        catch (System.Text.Json.JsonException e)
        {
            throw new PeftConfigException($"{source}: {e.Message}");
        }
        catch (PeftConfigException e) when (!e.Message.StartsWith(source, StringComparison.Ordinal))
        {
            // A value's own converter refused it (a malformed target_modules expression): the message gains the file.
            throw new PeftConfigException($"{source}: {e.Message}");
        }
    }

    /// <summary>
    /// Logs a warning for every key of the file that neither this config nor the reference's
    /// knows (a newer PEFT's field, a typo): it is kept and saved back, but has no effect here.
    /// </summary>
    /// <param name="source">The file, for the message.</param>
    public void WarnAboutUnknownFields(string source)
    {
        foreach (var key in ExtensionData?.Keys ?? Enumerable.Empty<string>())
        {
            if (UnimplementedFields.ContainsKey(key) || HarmlessFields.Contains(key)) continue;
            PeftLog.Warn($"{source}: `{key}` is not a {PeftType} config field this library knows; it is kept and saved back but has no effect.");
        }
    }

    /// <summary>Whether a value leaves the math as without the field: null, false, "", [] or {}.</summary>
    private static bool IsInert(JsonElement value) => value.ValueKind switch
    {
        JsonValueKind.Null or JsonValueKind.False or JsonValueKind.Undefined => true,
        JsonValueKind.Array => value.GetArrayLength() == 0,
        JsonValueKind.Object => !value.EnumerateObject().Any(),
        JsonValueKind.String => value.GetString()!.Length == 0,
        _ => false,
    };

    private static string InertValue(JsonElement value) => value.ValueKind switch
    {
        JsonValueKind.True => "false",
        JsonValueKind.Array => "[] or null",
        JsonValueKind.Object => "{} or null",
        _ => "null",
    };
}

/// <summary>A config that cannot be used as written: the message names the field(s) at fault.</summary>
public sealed class PeftConfigException(string message) : Exception(message);
