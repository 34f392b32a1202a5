using System.Text.Json.Serialization;
using Peft.Modeling;

namespace Peft.Backbones.ResNet;

/// <summary>ResNet's config.json (transformers' <c>ResNetConfig</c>); the lists hold one entry per stage.</summary>
public sealed record ResNetConfig : ModelConfig
{
    /// <summary>The two layer types transformers knows.</summary>
    public static IReadOnlyList<string> LayerTypes { get; } = ["basic", "bottleneck"];

    /// <summary>Image channels.</summary>
    [JsonPropertyName("num_channels")]
    public int NumChannels { get; init; } = 3;

    /// <summary>Channels of the 7×7 stem convolution.</summary>
    [JsonPropertyName("embedding_size")]
    public int EmbeddingSize { get; init; } = 64;

    /// <summary>Output channels per stage.</summary>
    [JsonPropertyName("hidden_sizes")]
    public IReadOnlyList<int> HiddenSizes { get; init; } = [256, 512, 1024, 2048];

    /// <summary>Layers per stage.</summary>
    [JsonPropertyName("depths")]
    public IReadOnlyList<int> Depths { get; init; } = [3, 4, 6, 3];

    /// <summary><c>basic</c> (two 3×3 convolutions, ResNet-18/34) or <c>bottleneck</c> (1×1, 3×3, 1×1; ResNet-50 and up).</summary>
    [JsonPropertyName("layer_type")]
    public string LayerType { get; init; } = "bottleneck";

    /// <summary>Activation after each convolution but a layer's last, and after the residual sum.</summary>
    [JsonPropertyName("hidden_act")]
    public string HiddenAct { get; init; } = "relu";

    /// <summary>Whether the first stage halves the grid (it does not in the published ResNets).</summary>
    [JsonPropertyName("downsample_in_first_stage")]
    public bool DownsampleInFirstStage { get; init; }

    /// <summary>Bottleneck layers: stride in the first 1×1 convolution instead of the 3×3 one (ResNet v1 vs v1.5).</summary>
    [JsonPropertyName("downsample_in_bottleneck")]
    public bool DownsampleInBottleneck { get; init; }

    /// <summary>True for <c>layer_type: "bottleneck"</c>.</summary>
    [JsonIgnore]
    public bool IsBottleneck => LayerType == "bottleneck";

    /// <inheritdoc />
    public override void Validate(string source)
    {
        base.Validate(source);
        CheckActivation(HiddenAct, "hidden_act", source);
        if (!LayerTypes.Contains(LayerType))
        {
            throw new ModelConfigException($"{source} at key 'layer_type': '{LayerType}' is not one of {string.Join(", ", LayerTypes)}.");
        }
        if (HiddenSizes.Count == 0) throw new ModelConfigException($"{source} at key 'hidden_sizes': no stages.");
        if (Depths.Count != HiddenSizes.Count)
        {
            throw new ModelConfigException($"{source} at key 'depths': {Depths.Count} entries for {HiddenSizes.Count} hidden_sizes.");
        }
        if (Depths.Any(d => d < 1)) throw new ModelConfigException($"{source} at key 'depths': every stage needs at least one layer.");
        if (IsBottleneck && HiddenSizes.Any(h => h % 4 != 0))
        {
            throw new ModelConfigException($"{source} at key 'hidden_sizes': bottleneck layers reduce channels by 4, so each size must be a multiple of 4.");
        }
    }
}
