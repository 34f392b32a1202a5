// diffusers' models/upsampling.py: Upsample2D with use_conv (nearest-neighbour ×2, then a 3×3 convolution named "conv").
using TorchSharp;
using static TorchSharp.torch;

namespace Peft.Diffusion.Unet2DCondition;

/// <summary>Doubles the resolution (or reaches the skip connection's size) by nearest neighbours, then a 3×3 convolution (<c>upsamplers.0.conv</c>).</summary>
[TargetModules("conv")]
public sealed partial class Upsample2D : nn.Module
{
    private nn.Module<Tensor, Tensor> conv;

    /// <summary>An upsampler over <paramref name="channels"/>.</summary>
    public Upsample2D(int channels) : base(nameof(Upsample2D))
    {
        conv = nn.Conv2d(channels, channels, 3, padding: 1);
        RegisterComponents();
    }

    /// <summary>(B, C, H, W) → (B, C, <paramref name="size"/>); diffusers passes the next skip's size when the input was not divisible by the UNet's total downsampling.</summary>
    public Tensor forward(Tensor hidden, long[] size)
    {
        using var scope = torch.NewDisposeScope();
        var upsampled = nn.functional.interpolate(hidden, size: size, mode: InterpolationMode.Nearest);
        return conv.call(upsampled).MoveToOuterDisposeScope();
    }
}
