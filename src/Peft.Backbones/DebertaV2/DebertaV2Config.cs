using System.Text.Json.Serialization;
using Peft.Backbones.Deberta;

namespace Peft.Backbones.DebertaV2;

/// <summary>DeBERTa-v2's (and v3's) config.json (transformers' <c>DebertaV2Config</c>): DeBERTa's keys plus its own.</summary>
public sealed record DebertaV2Config : DebertaConfig
{
    /// <summary>Log-bucket count for relative positions; not positive means plain clipped distances.</summary>
    [JsonPropertyName("position_buckets")]
    public int PositionBuckets { get; init; } = -1;

    /// <summary>Whether relative embeddings are projected by the content query/key projections.</summary>
    [JsonPropertyName("share_att_key")]
    public bool ShareAttKey { get; init; }

    /// <summary><c>"layer_norm"</c> normalises the relative embeddings; <c>|</c>-separated.</summary>
    [JsonPropertyName("norm_rel_ebd")]
    public string NormRelEbd { get; init; } = "none";

    /// <summary>Kernel of the convolution after the first layer; 0 means none.</summary>
    [JsonPropertyName("conv_kernel_size")]
    public int ConvKernelSize { get; init; }

    /// <summary>Groups of that convolution.</summary>
    [JsonPropertyName("conv_groups")]
    public int ConvGroups { get; init; } = 1;

    /// <summary>Activation after that convolution.</summary>
    [JsonPropertyName("conv_act")]
    public string ConvAct { get; init; } = "tanh";

    /// <summary>Head size when it is not hidden_size / num_attention_heads.</summary>
    [JsonPropertyName("attention_head_size")]
    public int? AttentionHeadSize { get; init; }

    /// <inheritdoc />
    [JsonIgnore]
    public override int HeadDim => AttentionHeadSize ?? HiddenSize / NumAttentionHeads;

    /// <summary>Relative embedding rows per direction: the bucket count, or the relative span.</summary>
    [JsonIgnore]
    public int PosEbdSize => PositionBuckets > 0 ? PositionBuckets : MaxRelativePositions;

    /// <summary>Whether the relative embeddings are layer-normalised.</summary>
    [JsonIgnore]
    public bool NormalisesRelEmbeddings => NormRelEbd.ToLowerInvariant().Split('|').Any(s => s.Trim() == "layer_norm");
}
