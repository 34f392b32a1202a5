using System.Text.Json.Serialization;
using Peft.Modeling;

namespace Peft.Backbones.GptJ;

/// <summary>GPT-J's config.json (transformers' <c>GPTJConfig</c>).</summary>
public sealed record GptJConfig : ModelConfig
{
    /// <summary>GPT-J does not tie its output head to the embedding unless config.json says so.</summary>
    public GptJConfig() => TieWordEmbeddings = false;

    /// <summary>Hidden size.</summary>
    [JsonPropertyName("n_embd"), JsonRequired]
    public int NEmbd { get; init; }

    /// <summary>Attention heads per layer.</summary>
    [JsonPropertyName("n_head"), JsonRequired]
    public int NHead { get; init; }

    /// <summary>Transformer blocks.</summary>
    [JsonPropertyName("n_layer"), JsonRequired]
    public int NLayer { get; init; }

    /// <summary>Longest sequence the model was trained for.</summary>
    [JsonPropertyName("n_positions")]
    public int NPositions { get; init; } = 2048;

    /// <summary>Features of each head that rotary positions rotate; null means the whole head.</summary>
    [JsonPropertyName("rotary_dim")]
    public int? RotaryDimValue { get; init; } = 64;

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
    public double ResidPdrop { get; init; }

    /// <summary>Dropout on embeddings.</summary>
    [JsonPropertyName("embd_pdrop")]
    public double EmbdPdrop { get; init; }

    /// <summary>Dropout on attention probabilities.</summary>
    [JsonPropertyName("attn_pdrop")]
    public double AttnPdrop { get; init; }

    /// <summary>Head size.</summary>
    [JsonIgnore]
    public int HeadDim => NEmbd / NHead;

    /// <summary>Rotated features per head.</summary>
    [JsonIgnore]
    public int RotaryDim => RotaryDimValue ?? HeadDim;

    /// <inheritdoc />
    protected override IEnumerable<ConfigSize> DeclaredSizes() =>
    [
        new("vocab_size", VocabSize, SizeBound.TensorDimension),
        new("n_embd", NEmbd, SizeBound.TensorDimension),
        new("n_layer", NLayer, SizeBound.LayerCount),
        new("n_head", NHead),
        new("n_positions", NPositions),
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
        if (NEmbd % NHead != 0)
        {
            throw new ModelConfigException($"{source}: n_embd ({NEmbd}) must be divisible by n_head ({NHead}).");
        }
        if (RotaryDim % 2 != 0 || RotaryDim > HeadDim)
        {
            throw new ModelConfigException($"{source} at key 'rotary_dim': {RotaryDim} must be even and at most the head size {HeadDim}.");
        }
    }
}
