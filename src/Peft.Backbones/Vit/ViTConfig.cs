using System.Text.Json.Serialization;
using Peft.Modeling;

namespace Peft.Backbones.Vit;

/// <summary>ViT's config.json (transformers' <c>ViTConfig</c>).</summary>
public sealed record ViTConfig : ModelConfig
{
    /// <summary>Hidden size.</summary>
    [JsonPropertyName("hidden_size")]
    public int HiddenSize { get; init; } = 768;

    /// <summary>Encoder layers.</summary>
    [JsonPropertyName("num_hidden_layers")]
    public int NumHiddenLayers { get; init; } = 12;

    /// <summary>Attention heads per layer.</summary>
    [JsonPropertyName("num_attention_heads")]
    public int NumAttentionHeads { get; init; } = 12;

    /// <summary>MLP inner size.</summary>
    [JsonPropertyName("intermediate_size")]
    public int IntermediateSize { get; init; } = 3072;

    /// <summary>MLP activation.</summary>
    [JsonPropertyName("hidden_act")]
    public string HiddenAct { get; init; } = "gelu";

    /// <summary>Dropout on hidden states.</summary>
    [JsonPropertyName("hidden_dropout_prob")]
    public double HiddenDropoutProb { get; init; }

    /// <summary>Dropout on attention probabilities.</summary>
    [JsonPropertyName("attention_probs_dropout_prob")]
    public double AttentionProbsDropoutProb { get; init; }

    /// <summary>Layer-norm epsilon.</summary>
    [JsonPropertyName("layer_norm_eps")]
    public double LayerNormEps { get; init; } = 1e-12;

    /// <summary>Side of the (square) images the position embeddings were learned for.</summary>
    [JsonPropertyName("image_size")]
    public int ImageSize { get; init; } = 224;

    /// <summary>Side of a (square) patch.</summary>
    [JsonPropertyName("patch_size")]
    public int PatchSize { get; init; } = 16;

    /// <summary>Image channels.</summary>
    [JsonPropertyName("num_channels")]
    public int NumChannels { get; init; } = 3;

    /// <summary>Whether the query, key and value projections have biases.</summary>
    [JsonPropertyName("qkv_bias")]
    public bool QkvBias { get; init; } = true;

    /// <summary>Head size.</summary>
    [JsonIgnore]
    public int HeadDim => HiddenSize / NumAttentionHeads;

    /// <summary>Patches per side of a training-size image.</summary>
    [JsonIgnore]
    public int PatchesPerSide => ImageSize / PatchSize;

    /// <inheritdoc />
    protected override IEnumerable<ConfigSize> DeclaredSizes() =>
    [
        new("hidden_size", HiddenSize, SizeBound.TensorDimension),
        new("num_hidden_layers", NumHiddenLayers, SizeBound.LayerCount),
        new("num_attention_heads", NumAttentionHeads),
        new("intermediate_size", IntermediateSize, SizeBound.TensorDimension),
        new("num_channels", NumChannels, SizeBound.TensorDimension),
    ];

    /// <inheritdoc />
    protected override IEnumerable<(ConfigSize Heads, ConfigSize Size)> HeadDivisions() => CommonHeadDivision(NumAttentionHeads, HiddenSize);

    /// <inheritdoc />
    public override void Validate(string source)
    {
        base.Validate(source);
        CheckActivation(HiddenAct, "hidden_act", source);
        if (HiddenSize % NumAttentionHeads != 0)
        {
            throw new ModelConfigException($"{source}: hidden_size {HiddenSize} is not a multiple of num_attention_heads {NumAttentionHeads}.");
        }
    }
}
