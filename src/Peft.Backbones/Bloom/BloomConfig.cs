using System.Text.Json.Serialization;
using Peft.Modeling;

namespace Peft.Backbones.Bloom;

/// <summary>BLOOM's config.json (transformers' <c>BloomConfig</c>).</summary>
public sealed record BloomConfig : ModelConfig
{
    /// <summary>Hidden size.</summary>
    [JsonPropertyName("hidden_size"), JsonRequired]
    public int HiddenSize { get; init; }

    /// <summary>Attention heads per layer.</summary>
    [JsonPropertyName("n_head"), JsonRequired]
    public int NHead { get; init; }

    /// <summary>Transformer blocks.</summary>
    [JsonPropertyName("n_layer"), JsonRequired]
    public int NLayer { get; init; }

    /// <summary>Layer-norm epsilon.</summary>
    [JsonPropertyName("layer_norm_epsilon")]
    public double LayerNormEpsilon { get; init; } = 1e-5;

    /// <summary>When true, residual connections start from the layer-normed input instead of the raw one.</summary>
    [JsonPropertyName("apply_residual_connection_post_layernorm")]
    public bool ApplyResidualConnectionPostLayernorm { get; init; }

    /// <summary>Dropout on the attention and MLP outputs before the residual add.</summary>
    [JsonPropertyName("hidden_dropout")]
    public double HiddenDropout { get; init; }

    /// <summary>Dropout on attention probabilities.</summary>
    [JsonPropertyName("attention_dropout")]
    public double AttentionDropout { get; init; }

    /// <summary>Dropout before the token-classification head; null means <see cref="HiddenDropout"/>.</summary>
    [JsonPropertyName("classifier_dropout")]
    public double? ClassifierDropout { get; init; }

    /// <summary>Head size.</summary>
    [JsonIgnore]
    public int HeadDim => HiddenSize / NHead;

    /// <inheritdoc />
    protected override IEnumerable<ConfigSize> DeclaredSizes() =>
    [
        new("vocab_size", VocabSize, SizeBound.TensorDimension),
        new("hidden_size", HiddenSize, SizeBound.TensorDimension),
        new("n_layer", NLayer, SizeBound.LayerCount),
        new("n_head", NHead),
    ];

    /// <inheritdoc />
    protected override IEnumerable<(ConfigSize Heads, ConfigSize Size)> HeadDivisions() =>
    [
        (new("n_head", NHead), new("hidden_size", HiddenSize)),
    ];

    /// <inheritdoc />
    public override void Validate(string source)
    {
        base.Validate(source);
        if (NHead <= 0 || HiddenSize % NHead != 0)
        {
            throw new ModelConfigException($"{source} at key 'n_head': hidden_size {HiddenSize} is not divisible by n_head {NHead}.");
        }
    }
}
