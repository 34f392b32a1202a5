using System.Text.Json.Serialization;
using Peft.Modeling;

namespace Peft.Backbones.Segformer;

/// <summary>SegFormer's config.json (transformers' <c>SegformerConfig</c>); the lists hold one entry per encoder stage.</summary>
public sealed record SegformerConfig : ModelConfig
{
    /// <summary>Image channels.</summary>
    [JsonPropertyName("num_channels")]
    public int NumChannels { get; init; } = 3;

    /// <summary>Encoder stages.</summary>
    [JsonPropertyName("num_encoder_blocks")]
    public int NumEncoderBlocks { get; init; } = 4;

    /// <summary>Layers per stage.</summary>
    [JsonPropertyName("depths")]
    public IReadOnlyList<int> Depths { get; init; } = [2, 2, 2, 2];

    /// <summary>Spatial reduction of keys and values per stage (1: none).</summary>
    [JsonPropertyName("sr_ratios")]
    public IReadOnlyList<int> SrRatios { get; init; } = [8, 4, 2, 1];

    /// <summary>Channels per stage.</summary>
    [JsonPropertyName("hidden_sizes")]
    public IReadOnlyList<int> HiddenSizes { get; init; } = [32, 64, 160, 256];

    /// <summary>Kernel of each stage's overlapping patch embedding.</summary>
    [JsonPropertyName("patch_sizes")]
    public IReadOnlyList<int> PatchSizes { get; init; } = [7, 3, 3, 3];

    /// <summary>Stride of each stage's overlapping patch embedding.</summary>
    [JsonPropertyName("strides")]
    public IReadOnlyList<int> Strides { get; init; } = [4, 2, 2, 2];

    /// <summary>Attention heads per stage.</summary>
    [JsonPropertyName("num_attention_heads")]
    public IReadOnlyList<int> NumAttentionHeads { get; init; } = [1, 2, 5, 8];

    /// <summary>Mix-FFN expansion per stage.</summary>
    [JsonPropertyName("mlp_ratios")]
    public IReadOnlyList<double> MlpRatios { get; init; } = [4, 4, 4, 4];

    /// <summary>Mix-FFN activation.</summary>
    [JsonPropertyName("hidden_act")]
    public string HiddenAct { get; init; } = "gelu";

    /// <summary>Dropout on hidden states.</summary>
    [JsonPropertyName("hidden_dropout_prob")]
    public double HiddenDropoutProb { get; init; }

    /// <summary>Dropout on attention probabilities.</summary>
    [JsonPropertyName("attention_probs_dropout_prob")]
    public double AttentionProbsDropoutProb { get; init; }

    /// <summary>Dropout before the decode head's classifier.</summary>
    [JsonPropertyName("classifier_dropout_prob")]
    public double ClassifierDropoutProb { get; init; } = 0.1;

    /// <summary>Stochastic depth, rising linearly over all layers up to this rate.</summary>
    [JsonPropertyName("drop_path_rate")]
    public double DropPathRate { get; init; } = 0.1;

    /// <summary>Channels of the all-MLP decode head.</summary>
    [JsonPropertyName("decoder_hidden_size")]
    public int DecoderHiddenSize { get; init; } = 256;

    /// <summary>Label value the segmentation loss leaves out.</summary>
    [JsonPropertyName("semantic_loss_ignore_index")]
    public long SemanticLossIgnoreIndex { get; init; } = 255;

    /// <summary>Stochastic-depth rate of every layer, in order over all stages.</summary>
    [JsonIgnore]
    public IReadOnlyList<double> DropPathRates
    {
        get
        {
            var total = Depths.Sum();
            return Enumerable.Range(0, total).Select(i => DropPathRate * i / Math.Max(total - 1, 1)).ToArray();
        }
    }

    /// <inheritdoc />
    /// <remarks>The per-stage lists are bounded entry by entry: depths by the block numbers in the tensor names, widths by the tensors.</remarks>
    protected override IEnumerable<ConfigSize> DeclaredSizes()
    {
        yield return new("num_channels", NumChannels, SizeBound.TensorDimension);
        yield return new("num_encoder_blocks", NumEncoderBlocks, SizeBound.LayerCount);
        yield return new("decoder_hidden_size", DecoderHiddenSize, SizeBound.TensorDimension);
        for (int i = 0; i < Depths.Count; i++) yield return new($"depths[{i}]", Depths[i], SizeBound.LayerCount);
        for (int i = 0; i < HiddenSizes.Count; i++) yield return new($"hidden_sizes[{i}]", HiddenSizes[i], SizeBound.TensorDimension);
        for (int i = 0; i < NumAttentionHeads.Count; i++) yield return new($"num_attention_heads[{i}]", NumAttentionHeads[i]);
        for (int i = 0; i < PatchSizes.Count; i++) yield return new($"patch_sizes[{i}]", PatchSizes[i], SizeBound.TensorDimension);
        for (int i = 0; i < Strides.Count; i++) yield return new($"strides[{i}]", Strides[i]);
        for (int i = 0; i < SrRatios.Count; i++) yield return new($"sr_ratios[{i}]", SrRatios[i], SizeBound.TensorDimension);
        for (int i = 0; i < Math.Min(MlpRatios.Count, HiddenSizes.Count); i++)
        {
            yield return new($"mlp_ratios[{i}] · hidden_sizes[{i}]", (long)Math.Ceiling(MlpRatios[i] * HiddenSizes[i]), SizeBound.TensorDimension);
        }
    }

    /// <inheritdoc />
    public override void Validate(string source)
    {
        base.Validate(source);
        CheckActivation(HiddenAct, "hidden_act", source);
        var stages = NumEncoderBlocks;
        foreach (var (key, count) in new[]
        {
            ("depths", Depths.Count), ("sr_ratios", SrRatios.Count), ("hidden_sizes", HiddenSizes.Count),
            ("patch_sizes", PatchSizes.Count), ("strides", Strides.Count), ("num_attention_heads", NumAttentionHeads.Count),
            ("mlp_ratios", MlpRatios.Count),
        })
        {
            if (count < stages) throw new ModelConfigException($"{source} at key '{key}': {count} entries for num_encoder_blocks = {stages} stages.");
        }
        for (int i = 0; i < stages; i++)
        {
            if (HiddenSizes[i] % NumAttentionHeads[i] != 0)
            {
                throw new ModelConfigException($"{source}: stage {i}'s hidden size {HiddenSizes[i]} is not a multiple of its {NumAttentionHeads[i]} attention heads.");
            }
        }
    }
}
