using System.Text.Json.Serialization;
using Peft.Modeling;

namespace Peft.Backbones.T5;

/// <summary>
/// The config.json of T5 and mT5 (transformers' <c>T5Config</c> and <c>MT5Config</c>; both models share this code).
/// </summary>
public sealed record T5Config : ModelConfig
{
    /// <summary>Hidden size.</summary>
    [JsonPropertyName("d_model"), JsonRequired]
    public int DModel { get; init; }

    /// <summary>Size of one attention head (not necessarily d_model / num_heads).</summary>
    [JsonPropertyName("d_kv"), JsonRequired]
    public int DKv { get; init; }

    /// <summary>Feed-forward inner size.</summary>
    [JsonPropertyName("d_ff"), JsonRequired]
    public int DFf { get; init; }

    /// <summary>Encoder blocks.</summary>
    [JsonPropertyName("num_layers"), JsonRequired]
    public int NumLayers { get; init; }

    /// <summary>Decoder blocks; null means as many as the encoder.</summary>
    [JsonPropertyName("num_decoder_layers")]
    public int? NumDecoderLayers { get; init; }

    /// <summary>Attention heads per layer.</summary>
    [JsonPropertyName("num_heads"), JsonRequired]
    public int NumHeads { get; init; }

    /// <summary>Buckets of the relative position bias.</summary>
    [JsonPropertyName("relative_attention_num_buckets")]
    public int RelativeAttentionNumBuckets { get; init; } = 32;

    /// <summary>Distance from which all relative positions share the last bucket.</summary>
    [JsonPropertyName("relative_attention_max_distance")]
    public int RelativeAttentionMaxDistance { get; init; } = 128;

    /// <summary>Dropout everywhere.</summary>
    [JsonPropertyName("dropout_rate")]
    public double DropoutRate { get; init; } = 0.1;

    /// <summary>Epsilon of the RMS layer norms.</summary>
    [JsonPropertyName("layer_norm_epsilon")]
    public double LayerNormEpsilon { get; init; } = 1e-6;

    /// <summary>
    /// Feed-forward kind: <c>"relu"</c> (wi, act, wo) or <c>"gated-&lt;act&gt;"</c> (act(wi_0) × wi_1, wo);
    /// <c>"gated-gelu"</c> means the tanh-approximated GELU, as transformers keeps it for compatibility.
    /// </summary>
    [JsonPropertyName("feed_forward_proj")]
    public string? FeedForwardProjValue { get; init; }

    /// <summary>
    /// Whether the decoder output is multiplied by d_model^-0.5 before the head (transformers 5 saves it
    /// for T5; configs written before it use <c>tie_word_embeddings</c>; mT5 never rescales).
    /// </summary>
    [JsonPropertyName("scale_decoder_outputs")]
    public bool? ScaleDecoderOutputsValue { get; init; }

    /// <summary>Decoder blocks.</summary>
    [JsonIgnore]
    public int DecoderLayers => NumDecoderLayers ?? NumLayers;

    /// <summary>True for mT5 (<c>model_type: "mt5"</c>).</summary>
    [JsonIgnore]
    public bool IsMT5 => ModelType == "mt5";

    /// <summary>The feed-forward kind, with each model's default (relu for T5, gated-gelu for mT5).</summary>
    [JsonIgnore]
    public string FeedForwardProj => FeedForwardProjValue ?? (IsMT5 ? "gated-gelu" : "relu");

    /// <summary>Whether the feed-forward block is gated (wi_0, wi_1, wo).</summary>
    [JsonIgnore]
    public bool IsGatedAct => FeedForwardProj.Split('-') is ["gated", _];

    /// <summary>The feed-forward activation's name for <see cref="Activations.Get"/>.</summary>
    [JsonIgnore]
    public string DenseActFn => FeedForwardProj == "gated-gelu" ? "gelu_new" : FeedForwardProj.Split('-')[^1];

    /// <summary>Whether the decoder output is rescaled before the head (see <see cref="ScaleDecoderOutputsValue"/>).</summary>
    [JsonIgnore]
    public bool ScaleDecoderOutputs => !IsMT5 && (ScaleDecoderOutputsValue ?? TieWordEmbeddings);

    /// <inheritdoc />
    protected override IEnumerable<ConfigSize> DeclaredSizes() =>
    [
        new("vocab_size", VocabSize, SizeBound.TensorDimension),
        new("d_model", DModel, SizeBound.TensorDimension),
        new("d_kv", DKv, SizeBound.TensorDimension),
        new("d_ff", DFf, SizeBound.TensorDimension),
        new("num_layers", NumLayers, SizeBound.LayerCount),
        .. (NumDecoderLayers is { } value ? new ConfigSize[] { new("num_decoder_layers", value, SizeBound.LayerCount) } : []),
        new("num_heads", NumHeads),
    ];
}
