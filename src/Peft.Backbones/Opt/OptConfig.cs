using System.Text.Json.Serialization;
using Peft.Modeling;

namespace Peft.Backbones.Opt;

/// <summary>OPT's config.json (transformers' <c>OPTConfig</c>).</summary>
public sealed record OptConfig : ModelConfig
{
    /// <summary>Hidden size of the decoder layers.</summary>
    [JsonPropertyName("hidden_size"), JsonRequired]
    public int HiddenSize { get; init; }

    /// <summary>Attention heads per layer.</summary>
    [JsonPropertyName("num_attention_heads"), JsonRequired]
    public int NumAttentionHeads { get; init; }

    /// <summary>Decoder layers.</summary>
    [JsonPropertyName("num_hidden_layers"), JsonRequired]
    public int NumHiddenLayers { get; init; }

    /// <summary>Inner size of the feed-forward block.</summary>
    [JsonPropertyName("ffn_dim"), JsonRequired]
    public int FfnDim { get; init; }

    /// <summary>Longest sequence (learned positions; the table has two more rows, see the offset).</summary>
    [JsonPropertyName("max_position_embeddings"), JsonRequired]
    public int MaxPositionEmbeddings { get; init; }

    /// <summary>Token embedding size; when it differs from hidden_size, project_in/project_out convert.</summary>
    [JsonPropertyName("word_embed_proj_dim")]
    public int? WordEmbedProjDimValue { get; init; }

    /// <summary>Pre-norm layers (true) or post-norm layers (false, OPT-350m).</summary>
    [JsonPropertyName("do_layer_norm_before")]
    public bool DoLayerNormBefore { get; init; } = true;

    /// <summary>Leaves out the decoder's final layer norm (old checkpoints only).</summary>
    [JsonPropertyName("_remove_final_layer_norm")]
    public bool RemoveFinalLayerNorm { get; init; }

    /// <summary>Whether linear layers have biases.</summary>
    [JsonPropertyName("enable_bias")]
    public bool EnableBias { get; init; } = true;

    /// <summary>Whether layer norms have a weight and bias.</summary>
    [JsonPropertyName("layer_norm_elementwise_affine")]
    public bool LayerNormElementwiseAffine { get; init; } = true;

    /// <summary>Feed-forward activation.</summary>
    [JsonPropertyName("activation_function")]
    public string ActivationFunction { get; init; } = "relu";

    /// <summary>Dropout on residual branches.</summary>
    [JsonPropertyName("dropout")]
    public double Dropout { get; init; } = 0.1;

    /// <summary>Dropout on attention probabilities.</summary>
    [JsonPropertyName("attention_dropout")]
    public double AttentionDropout { get; init; }

    /// <summary>Probability of skipping a whole layer in training (LayerDrop).</summary>
    [JsonPropertyName("layerdrop")]
    public double LayerDrop { get; init; }

    /// <summary>Token embedding size (word_embed_proj_dim, or hidden_size when unset).</summary>
    [JsonIgnore]
    public int WordEmbedProjDim => WordEmbedProjDimValue ?? HiddenSize;

    /// <summary>Head size.</summary>
    [JsonIgnore]
    public int HeadDim => HiddenSize / NumAttentionHeads;

    /// <summary>OPT's learned positions start at row 2 of the table (a fairseq convention).</summary>
    public const int PositionOffset = 2;

    /// <inheritdoc />
    protected override IEnumerable<ConfigSize> DeclaredSizes() =>
    [
        new("vocab_size", VocabSize, SizeBound.TensorDimension),
        new("hidden_size", HiddenSize, SizeBound.TensorDimension),
        new("num_hidden_layers", NumHiddenLayers, SizeBound.LayerCount),
        new("num_attention_heads", NumAttentionHeads),
        new("ffn_dim", FfnDim, SizeBound.TensorDimension),
    ];

    /// <inheritdoc />
    protected override IEnumerable<(ConfigSize Heads, ConfigSize Size)> HeadDivisions() => CommonHeadDivision(NumAttentionHeads, HiddenSize);

    /// <inheritdoc />
    public override void Validate(string source)
    {
        base.Validate(source);
        CheckActivation(ActivationFunction, "activation_function", source);
        if (NumAttentionHeads <= 0 || HiddenSize % NumAttentionHeads != 0)
        {
            throw new ModelConfigException(
                $"{source} at key 'num_attention_heads': hidden_size {HiddenSize} is not divisible by num_attention_heads {NumAttentionHeads}.");
        }
    }
}
