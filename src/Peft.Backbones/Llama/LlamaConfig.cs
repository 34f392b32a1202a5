using System.Text.Json.Serialization;
using Peft.Backbones.Shared;
using Peft.Modeling;

namespace Peft.Backbones.Llama;

/// <summary>Llama's config.json (transformers' <c>LlamaConfig</c>).</summary>
public sealed record LlamaConfig : ModelConfig
{
    /// <summary>Llama does not tie its output head to the embedding unless config.json says so.</summary>
    public LlamaConfig() => TieWordEmbeddings = false;

    /// <summary>Hidden size.</summary>
    [JsonPropertyName("hidden_size"), JsonRequired]
    public int HiddenSize { get; init; }

    /// <summary>MLP inner size.</summary>
    [JsonPropertyName("intermediate_size"), JsonRequired]
    public int IntermediateSize { get; init; }

    /// <summary>Decoder layers.</summary>
    [JsonPropertyName("num_hidden_layers"), JsonRequired]
    public int NumHiddenLayers { get; init; }

    /// <summary>Query heads per layer.</summary>
    [JsonPropertyName("num_attention_heads"), JsonRequired]
    public int NumAttentionHeads { get; init; }

    /// <summary>Key/value heads per layer (grouped-query attention); null means one per query head.</summary>
    [JsonPropertyName("num_key_value_heads")]
    public int? NumKeyValueHeadsValue { get; init; }

    /// <summary>Head size; null means hidden_size / num_attention_heads.</summary>
    [JsonPropertyName("head_dim")]
    public int? HeadDimValue { get; init; }

    /// <summary>MLP activation (of the gate projection).</summary>
    [JsonPropertyName("hidden_act")]
    public string HiddenAct { get; init; } = "silu";

    /// <summary>Longest sequence the model was trained for.</summary>
    [JsonPropertyName("max_position_embeddings")]
    public int MaxPositionEmbeddings { get; init; } = 2048;

    /// <summary>RMSNorm epsilon.</summary>
    [JsonPropertyName("rms_norm_eps")]
    public double RmsNormEps { get; init; } = 1e-6;

    /// <summary>Bias on the q/k/v/o projections.</summary>
    [JsonPropertyName("attention_bias")]
    public bool AttentionBias { get; init; }

    /// <summary>Dropout on attention probabilities.</summary>
    [JsonPropertyName("attention_dropout")]
    public double AttentionDropout { get; init; }

    /// <summary>Bias on the MLP projections.</summary>
    [JsonPropertyName("mlp_bias")]
    public bool MlpBias { get; init; }

    /// <summary>Rotary settings as transformers 5 writes them.</summary>
    [JsonPropertyName("rope_parameters")]
    public RopeParameters? RopeParameters { get; init; }

    /// <summary>Rotary base as transformers 4 writes it.</summary>
    [JsonPropertyName("rope_theta")]
    public double? RopeTheta { get; init; }

    /// <summary>Rotary scaling as transformers 4 writes it.</summary>
    [JsonPropertyName("rope_scaling")]
    public RopeParameters? RopeScaling { get; init; }

    /// <summary>Fraction of each head that is rotated, as a top-level key.</summary>
    [JsonPropertyName("partial_rotary_factor")]
    public double? PartialRotaryFactor { get; init; }

    /// <summary>Dropout before the token-classification head.</summary>
    [JsonPropertyName("classifier_dropout")]
    public double? ClassifierDropout { get; init; }

    /// <summary>Key/value heads per layer.</summary>
    [JsonIgnore]
    public int NumKeyValueHeads => NumKeyValueHeadsValue ?? NumAttentionHeads;

    /// <summary>Head size.</summary>
    [JsonIgnore]
    public int HeadDim => HeadDimValue ?? HiddenSize / NumAttentionHeads;

    /// <summary>The rotary embedding the config asks for.</summary>
    /// <param name="source">The config file, for error messages.</param>
    /// <exception cref="ModelConfigException">An unsupported rope type, or one missing a value.</exception>
    public RopeSettings ResolveRope(string source = "config.json") =>
        RopeSettings.Resolve(RopeParameters, RopeScaling, RopeTheta, PartialRotaryFactor, defaultTheta: 10000.0, defaultPartial: 1.0, source);

    /// <inheritdoc />
    protected override IEnumerable<ConfigSize> DeclaredSizes() =>
    [
        new("vocab_size", VocabSize, SizeBound.TensorDimension),
        new("hidden_size", HiddenSize, SizeBound.TensorDimension),
        new("num_hidden_layers", NumHiddenLayers, SizeBound.LayerCount),
        new("num_attention_heads", NumAttentionHeads),
        .. (NumKeyValueHeadsValue is { } value ? new ConfigSize[] { new("num_key_value_heads", value) } : []),
        new("intermediate_size", IntermediateSize, SizeBound.TensorDimension),
    ];

    /// <inheritdoc />
    public override void Validate(string source)
    {
        base.Validate(source);
        CheckActivation(HiddenAct, "hidden_act", source);
        if (NumAttentionHeads % NumKeyValueHeads != 0)
        {
            throw new ModelConfigException(
                $"{source}: num_attention_heads ({NumAttentionHeads}) must be a multiple of num_key_value_heads ({NumKeyValueHeads}).");
        }
        ResolveRope(source);
    }
}
