using System.Text.Json.Serialization;
using Peft.Modeling;
using Peft.PromptLearning;

namespace Peft.Methods.PrefixTuning;

/// <summary>Prefix tuning's adapter_config.json (the reference's <c>PrefixTuningConfig</c>).</summary>
public sealed record PrefixTuningConfig : PromptLearningConfig
{
    /// <inheritdoc />
    [JsonPropertyName("peft_type")] // repeated: without it the override is written a second time as "PeftType"
    public override PeftType PeftType => PeftType.PrefixTuning;

    /// <inheritdoc />
    public override PromptKind Kind => PromptKind.Prefix;

    /// <summary>Null for random prefixes; <c>"zero"</c> to start from all-zero prefixes (or a zero projection output).</summary>
    [JsonPropertyName("init_weights")]
    public string? InitWeights { get; init; }

    /// <summary>Hidden size of the projection; the token dimension when left out.</summary>
    [JsonPropertyName("encoder_hidden_size")]
    public int? EncoderHiddenSize { get; init; }

    /// <summary>Compute the prefixes with a two-layer MLP from smaller embeddings.</summary>
    [JsonPropertyName("prefix_projection")]
    public bool PrefixProjection { get; init; }

    /// <inheritdoc />
    public override void Validate()
    {
        base.Validate();
        if (InitWeights is not (null or "zero"))
        {
            throw new PeftConfigException($"`init_weights` = \"{InitWeights}\" is not supported; use null (random) or \"zero\".");
        }
        if (EncoderHiddenSize is <= 0) throw new PeftConfigException($"`encoder_hidden_size` must be a positive integer, got {EncoderHiddenSize}.");
    }

    /// <inheritdoc />
    public override PromptLearningConfig ForModel(PromptLayout layout, TaskType task)
    {
        var resolved = (PrefixTuningConfig)base.ForModel(layout, task);
        return resolved with { EncoderHiddenSize = resolved.EncoderHiddenSize ?? resolved.TokenDim };
    }
}
