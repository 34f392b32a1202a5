using System.Text.Json.Serialization;
using Peft.Modeling;

namespace Peft.Backbones.Bart;

/// <summary>BART's config.json (transformers' <c>BartConfig</c>).</summary>
public sealed record BartConfig : ModelConfig
{
    /// <summary>Hidden size.</summary>
    [JsonPropertyName("d_model"), JsonRequired]
    public int DModel { get; init; }

    /// <summary>Encoder layers.</summary>
    [JsonPropertyName("encoder_layers"), JsonRequired]
    public int EncoderLayers { get; init; }

    /// <summary>Decoder layers.</summary>
    [JsonPropertyName("decoder_layers"), JsonRequired]
    public int DecoderLayers { get; init; }

    /// <summary>Attention heads per encoder layer.</summary>
    [JsonPropertyName("encoder_attention_heads"), JsonRequired]
    public int EncoderAttentionHeads { get; init; }

    /// <summary>Attention heads per decoder layer.</summary>
    [JsonPropertyName("decoder_attention_heads"), JsonRequired]
    public int DecoderAttentionHeads { get; init; }

    /// <summary>Feed-forward inner size in the encoder.</summary>
    [JsonPropertyName("encoder_ffn_dim"), JsonRequired]
    public int EncoderFfnDim { get; init; }

    /// <summary>Feed-forward inner size in the decoder.</summary>
    [JsonPropertyName("decoder_ffn_dim"), JsonRequired]
    public int DecoderFfnDim { get; init; }

    /// <summary>Longest sequence (learned positions; the table has two more rows, the offset).</summary>
    [JsonPropertyName("max_position_embeddings"), JsonRequired]
    public int MaxPositionEmbeddings { get; init; }

    /// <summary>Feed-forward activation.</summary>
    [JsonPropertyName("activation_function")]
    public string ActivationFunction { get; init; } = "gelu";

    /// <summary>Dropout on residual branches and embeddings.</summary>
    [JsonPropertyName("dropout")]
    public double Dropout { get; init; } = 0.1;

    /// <summary>Dropout on attention probabilities.</summary>
    [JsonPropertyName("attention_dropout")]
    public double AttentionDropout { get; init; }

    /// <summary>Dropout after the feed-forward activation.</summary>
    [JsonPropertyName("activation_dropout")]
    public double ActivationDropout { get; init; }

    /// <summary>Multiply token embeddings by sqrt(d_model).</summary>
    [JsonPropertyName("scale_embedding")]
    public bool ScaleEmbedding { get; init; }

    /// <summary>The factor token embeddings are multiplied by.</summary>
    [JsonIgnore]
    public double EmbedScale => ScaleEmbedding ? Math.Sqrt(DModel) : 1.0;

    /// <inheritdoc />
    protected override IEnumerable<ConfigSize> DeclaredSizes() =>
    [
        new("vocab_size", VocabSize, SizeBound.TensorDimension),
        new("d_model", DModel, SizeBound.TensorDimension),
        new("encoder_layers", EncoderLayers, SizeBound.LayerCount),
        new("decoder_layers", DecoderLayers, SizeBound.LayerCount),
        new("encoder_attention_heads", EncoderAttentionHeads),
        new("decoder_attention_heads", DecoderAttentionHeads),
    ];

    /// <inheritdoc />
    protected override IEnumerable<(ConfigSize Heads, ConfigSize Size)> HeadDivisions() =>
    [
        (new("encoder_attention_heads", EncoderAttentionHeads), new("d_model", DModel)),
        (new("decoder_attention_heads", DecoderAttentionHeads), new("d_model", DModel)),
    ];

    /// <inheritdoc />
    public override void Validate(string source)
    {
        base.Validate(source);
        CheckActivation(ActivationFunction, "activation_function", source);
    }
}
