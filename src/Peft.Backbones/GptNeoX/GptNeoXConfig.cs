using System.Text.Json.Serialization;
using Peft.Backbones.Shared;
using Peft.Modeling;

namespace Peft.Backbones.GptNeoX;

/// <summary>GPT-NeoX's config.json (transformers' <c>GPTNeoXConfig</c>).</summary>
public sealed record GptNeoXConfig : ModelConfig
{
    /// <summary>GPT-NeoX does not tie its output head to the embedding unless config.json says so.</summary>
    public GptNeoXConfig() => TieWordEmbeddings = false;

    /// <summary>Hidden size.</summary>
    [JsonPropertyName("hidden_size"), JsonRequired]
    public int HiddenSize { get; init; }

    /// <summary>MLP inner size.</summary>
    [JsonPropertyName("intermediate_size"), JsonRequired]
    public int IntermediateSize { get; init; }

    /// <summary>Layers.</summary>
    [JsonPropertyName("num_hidden_layers"), JsonRequired]
    public int NumHiddenLayers { get; init; }

    /// <summary>Attention heads per layer.</summary>
    [JsonPropertyName("num_attention_heads"), JsonRequired]
    public int NumAttentionHeads { get; init; }

    /// <summary>MLP activation.</summary>
    [JsonPropertyName("hidden_act")]
    public string HiddenAct { get; init; } = "gelu";

    /// <summary>Longest sequence the model was trained for.</summary>
    [JsonPropertyName("max_position_embeddings")]
    public int MaxPositionEmbeddings { get; init; } = 2048;

    /// <summary>Layer-norm epsilon.</summary>
    [JsonPropertyName("layer_norm_eps")]
    public double LayerNormEps { get; init; } = 1e-5;

    /// <summary>Attention and MLP both read the block input (true), or the MLP reads the attention's output (false).</summary>
    [JsonPropertyName("use_parallel_residual")]
    public bool UseParallelResidual { get; init; } = true;

    /// <summary>Bias on query_key_value and dense.</summary>
    [JsonPropertyName("attention_bias")]
    public bool AttentionBias { get; init; } = true;

    /// <summary>Dropout on attention probabilities.</summary>
    [JsonPropertyName("attention_dropout")]
    public double AttentionDropout { get; init; }

    /// <summary>Dropout on embeddings and residual branches.</summary>
    [JsonPropertyName("hidden_dropout")]
    public double HiddenDropout { get; init; }

    /// <summary>Dropout before the token-classification head.</summary>
    [JsonPropertyName("classifier_dropout")]
    public double ClassifierDropout { get; init; } = 0.1;

    /// <summary>Rotary settings as transformers 5 writes them (<c>partial_rotary_factor</c> inside).</summary>
    [JsonPropertyName("rope_parameters")]
    public RopeParameters? RopeParameters { get; init; }

    /// <summary>Rotary scaling as transformers 4 writes it.</summary>
    [JsonPropertyName("rope_scaling")]
    public RopeParameters? RopeScaling { get; init; }

    /// <summary>Fraction of each head that is rotated, as transformers 4 writes it.</summary>
    [JsonPropertyName("rotary_pct")]
    public double? RotaryPct { get; init; }

    /// <summary>Rotary base, as transformers 4 writes it.</summary>
    [JsonPropertyName("rotary_emb_base")]
    public double? RotaryEmbBase { get; init; }

    /// <summary>Rotary base under the common key.</summary>
    [JsonPropertyName("rope_theta")]
    public double? RopeTheta { get; init; }

    /// <summary>Fraction of each head that is rotated, under the common key.</summary>
    [JsonPropertyName("partial_rotary_factor")]
    public double? PartialRotaryFactor { get; init; }

    /// <summary>Head size.</summary>
    [JsonIgnore]
    public int HeadDim => HiddenSize / NumAttentionHeads;

    /// <summary>The rotary embedding the config asks for (a quarter of each head by default).</summary>
    /// <param name="source">The config file, for error messages.</param>
    /// <exception cref="ModelConfigException">An unsupported rope type, or one missing a value.</exception>
    public RopeSettings ResolveRope(string source = "config.json") =>
        RopeSettings.Resolve(RopeParameters, RopeScaling, RopeTheta ?? RotaryEmbBase, PartialRotaryFactor ?? RotaryPct,
            defaultTheta: 10000.0, defaultPartial: 0.25, source);

    /// <inheritdoc />
    protected override IEnumerable<ConfigSize> DeclaredSizes() => CommonSizes(VocabSize, HiddenSize, NumHiddenLayers, NumAttentionHeads, IntermediateSize);

    /// <inheritdoc />
    protected override IEnumerable<(ConfigSize Heads, ConfigSize Size)> HeadDivisions() => CommonHeadDivision(NumAttentionHeads, HiddenSize);

    /// <inheritdoc />
    public override void Validate(string source)
    {
        base.Validate(source);
        CheckActivation(HiddenAct, "hidden_act", source);
        if (HiddenSize % NumAttentionHeads != 0)
        {
            throw new ModelConfigException(
                $"{source}: hidden_size ({HiddenSize}) must be divisible by num_attention_heads ({NumAttentionHeads}).");
        }
        ResolveRope(source);
    }
}
