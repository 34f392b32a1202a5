// diffusers' models/unets/unet_2d_blocks.py: UNetMidBlock2DCrossAttn (resnets.0, then attentions.M → resnets.M+1).
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Peft.Diffusion.Unet2DCondition;

/// <summary>The middle block (<c>mid_block</c>) at the lowest resolution: ResNet, transformer, ResNet.</summary>
public sealed class UNetMidBlock2DCrossAttn : nn.Module
{
    private readonly ModuleList<Transformer2DModel> attentions;
    private readonly ModuleList<ResnetBlock2D> resnets;

    /// <summary>The middle block over the last down block's channels and settings.</summary>
    public UNetMidBlock2DCrossAttn(UNet2DConditionConfig config) : base(nameof(UNetMidBlock2DCrossAttn))
    {
        var last = config.Blocks - 1;
        var channels = config.BlockOutChannels[last];
        // diffusers' get_mid_block builds one transformer (num_layers = 1) with the last block's heads and context width.
        attentions = nn.ModuleList(new Transformer2DModel(config, channels, config.AttentionHeadDim.At(last),
            config.CrossAttentionDim.At(last), config.TransformerLayersPerBlock.At(last)));
        resnets = nn.ModuleList(
            new ResnetBlock2D(config, channels, channels, config.MidBlockScaleFactor),
            new ResnetBlock2D(config, channels, channels, config.MidBlockScaleFactor));
        RegisterComponents();
    }

    /// <summary>(B, C, h, w) → (B, C, h, w).</summary>
    public Tensor forward(Tensor hidden, Tensor temb, Tensor context, Tensor? contextMask)
    {
        using var scope = torch.NewDisposeScope();
        hidden = resnets[0].forward(hidden, temb);
        for (int i = 0; i < attentions.Count; i++)
        {
            hidden = resnets[i + 1].forward(attentions[i].forward(hidden, context, contextMask), temb);
        }
        return hidden.MoveToOuterDisposeScope();
    }
}
