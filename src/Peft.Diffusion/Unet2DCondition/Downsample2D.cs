// diffusers' models/downsampling.py: Downsample2D with use_conv (a stride-2 3×3 convolution named "conv").
using TorchSharp;
using static TorchSharp.torch;

namespace Peft.Diffusion.Unet2DCondition;

/// <summary>Halves the resolution with a stride-2 3×3 convolution (<c>downsamplers.0.conv</c>).</summary>
[TargetModules("conv")]
public sealed partial class Downsample2D : nn.Module<Tensor, Tensor>
{
    private nn.Module<Tensor, Tensor> conv;
    private readonly int _padding;

    /// <summary>A downsampler over <paramref name="channels"/>; <paramref name="padding"/> 0 pads right and bottom by one instead, as diffusers.</summary>
    public Downsample2D(int channels, int padding) : base(nameof(Downsample2D))
    {
        conv = nn.Conv2d(channels, channels, 3, stride: 2, padding: padding);
        _padding = padding;
        RegisterComponents();
    }

    /// <summary>(B, C, H, W) → (B, C, ⌈H/2⌉, ⌈W/2⌉).</summary>
    public override Tensor forward(Tensor hidden)
    {
        using var scope = torch.NewDisposeScope();
        var input = _padding == 0 ? nn.functional.pad(hidden, [0, 1, 0, 1]) : hidden;
        return conv.call(input).MoveToOuterDisposeScope();
    }
}
