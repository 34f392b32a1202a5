using Peft.Diffusion.Unet2DCondition;
using Peft.Methods.Lora;
using TorchSharp;
using static TorchSharp.torch;

namespace Peft.Tests.Diffusion;

/// <summary>A two-level UNet small enough for the default suite: one cross-attention and one plain block each way.</summary>
internal static class TinyUnet
{
    public const int ContextDim = 12;

    public static UNet2DConditionConfig Config() => new()
    {
        InChannels = 4,
        OutChannels = 4,
        BlockOutChannels = [8, 16],
        DownBlockTypes = ["CrossAttnDownBlock2D", "DownBlock2D"],
        UpBlockTypes = ["UpBlock2D", "CrossAttnUpBlock2D"],
        LayersPerBlock = new PerBlock(1),
        CrossAttentionDim = new PerBlock(ContextDim),
        AttentionHeadDim = new PerBlock(2),
        NormNumGroups = 4,
    };

    /// <summary>
    /// Tests run the UNet in float64: this TorchSharp build's float32 CPU convolution returns NaN now and then on small maps
    /// (about one forward in eight and half the backward passes of this model; never in float64), see docs/DIFFUSION.md.
    /// </summary>
    public const ScalarType DType = ScalarType.Float64;

    public static UNet2DConditionModel Build(int seed, UNet2DConditionConfig? config = null)
    {
        torch.manual_seed(seed);
        var model = new UNet2DConditionModel(config ?? Config());
        model.to(DType);
        model.eval();
        return model;
    }

    /// <summary>The model with every parameter frozen.</summary>
    public static UNet2DConditionModel Frozen(UNet2DConditionModel model)
    {
        foreach (var p in model.parameters()) p.requires_grad = false;
        return model;
    }

    public static Tensor Randn(params long[] shape) => torch.randn(shape, DType);

    /// <summary>LoRA on the attention projections (diffusers' scripts' targets) and the ResNets' convolutions.</summary>
    public static LoraConfig Lora(LoraInitWeights? init = null) => new()
    {
        R = 4,
        LoraAlpha = 8,
        TargetModules = Tuners.TargetModules.FromNames(["to_q", "to_k", "to_v", "to_out.0", "conv1", "conv2"]),
        InitLoraWeights = init ?? LoraInitWeights.Default,
    };

    public static Tensor Context(long batch, int seed)
    {
        torch.manual_seed(seed);
        return torch.randn(batch, 5, ContextDim, DType);
    }
}
