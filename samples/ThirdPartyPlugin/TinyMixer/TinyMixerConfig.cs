using System.Text.Json.Serialization;
using Peft.Modeling;

namespace ThirdPartyPlugin.TinyMixer;

/// <summary>
/// The config.json of a tiny-mixer model. <c>model_type</c>, <c>vocab_size</c>, <c>num_labels</c>
/// and <c>pad_token_id</c> come from <see cref="ModelConfig"/>; keys neither record models are kept.
/// </summary>
public sealed record TinyMixerConfig : ModelConfig
{
    /// <summary>Width of the token states.</summary>
    [JsonPropertyName("hidden_size"), JsonRequired]
    public int HiddenSize { get; init; }

    /// <summary>Inner width of each block's MLP.</summary>
    [JsonPropertyName("intermediate_size"), JsonRequired]
    public int IntermediateSize { get; init; }

    /// <summary>Number of mixer blocks.</summary>
    [JsonPropertyName("num_hidden_layers"), JsonRequired]
    public int NumHiddenLayers { get; init; }

    /// <summary>The MLP's activation, by its transformers name.</summary>
    [JsonPropertyName("hidden_act")]
    public string HiddenAct { get; init; } = "gelu";

    /// <summary>Layer-norm epsilon.</summary>
    [JsonPropertyName("layer_norm_eps")]
    public double LayerNormEps { get; init; } = 1e-5;

    /// <inheritdoc />
    public override void Validate(string source)
    {
        base.Validate(source);
        if (VocabSize <= 0) throw new ModelConfigException($"{source}: 'vocab_size' must be positive, got {VocabSize}.");
        if (HiddenSize <= 0) throw new ModelConfigException($"{source}: 'hidden_size' must be positive, got {HiddenSize}.");
    }
}
