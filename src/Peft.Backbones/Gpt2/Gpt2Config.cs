using System.Text.Json.Serialization;
using Peft.Modeling;

namespace Peft.Backbones.Gpt2;

/// <summary>GPT-2's config.json (transformers' <c>GPT2Config</c>).</summary>
public sealed record Gpt2Config : ModelConfig
{
    /// <summary>Hidden size.</summary>
    [JsonPropertyName("n_embd"), JsonRequired]
    public int NEmbd { get; init; }

    /// <summary>Attention heads per layer.</summary>
    [JsonPropertyName("n_head"), JsonRequired]
    public int NHead { get; init; }

    /// <summary>Transformer blocks.</summary>
    [JsonPropertyName("n_layer"), JsonRequired]
    public int NLayer { get; init; }

    /// <summary>Longest sequence (learned positions).</summary>
    [JsonPropertyName("n_positions"), JsonRequired]
    public int NPositions { get; init; }

    /// <summary>MLP inner size; null means 4 × n_embd.</summary>
    [JsonPropertyName("n_inner")]
    public int? NInner { get; init; }

    /// <summary>MLP activation.</summary>
    [JsonPropertyName("activation_function")]
    public string ActivationFunction { get; init; } = "gelu_new";

    /// <summary>Layer-norm epsilon.</summary>
    [JsonPropertyName("layer_norm_epsilon")]
    public double LayerNormEpsilon { get; init; } = 1e-5;

    /// <summary>Dropout on residual branches.</summary>
    [JsonPropertyName("resid_pdrop")]
    public double ResidPdrop { get; init; } = 0.1;

    /// <summary>Dropout on embeddings.</summary>
    [JsonPropertyName("embd_pdrop")]
    public double EmbdPdrop { get; init; } = 0.1;

    /// <summary>Dropout on attention probabilities.</summary>
    [JsonPropertyName("attn_pdrop")]
    public double AttnPdrop { get; init; } = 0.1;

    /// <summary>Divide attention scores by sqrt(head_dim).</summary>
    [JsonPropertyName("scale_attn_weights")]
    public bool ScaleAttnWeights { get; init; } = true;

    /// <summary>Further divide layer i's scores by i + 1.</summary>
    [JsonPropertyName("scale_attn_by_inverse_layer_idx")]
    public bool ScaleAttnByInverseLayerIdx { get; init; }

    /// <summary>Dropout before the classification head.</summary>
    [JsonPropertyName("classifier_dropout")]
    public double? ClassifierDropout { get; init; }

    /// <summary>Head size.</summary>
    [JsonIgnore]
    public int HeadDim => NEmbd / NHead;

    /// <inheritdoc />
    protected override IEnumerable<ConfigSize> DeclaredSizes() =>
    [
        new("vocab_size", VocabSize, SizeBound.TensorDimension),
        new("n_embd", NEmbd, SizeBound.TensorDimension),
        new("n_layer", NLayer, SizeBound.LayerCount),
        new("n_head", NHead),
        new("n_positions", NPositions, SizeBound.TensorDimension),
        .. (NInner is { } value ? new ConfigSize[] { new("n_inner", value, SizeBound.TensorDimension) } : []),
    ];

    /// <inheritdoc />
    protected override IEnumerable<(ConfigSize Heads, ConfigSize Size)> HeadDivisions() =>
    [
        (new("n_head", NHead), new("n_embd", NEmbd)),
    ];

    /// <inheritdoc />
    public override void Validate(string source)
    {
        base.Validate(source);
        CheckActivation(ActivationFunction, "activation_function", source);
    }
}
