// diffusers' models/unets/unet_2d_blocks.py: DownBlock2D (ResNets only, then a downsampler).
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Peft.Diffusion.Unet2DCondition;

/// <summary><c>down_blocks.N</c> of type DownBlock2D: resnets.M and downsamplers.0 (all but the last block); no attention.</summary>
public sealed class DownBlock2D : nn.Module, IUNetDownBlock
{
    private readonly ModuleList<ResnetBlock2D> resnets;
    private readonly ModuleList<Downsample2D>? downsamplers;

    /// <summary>Down block <paramref name="block"/> from <paramref name="inChannels"/> channels.</summary>
    public DownBlock2D(UNet2DConditionConfig config, int block, int inChannels, bool addDownsample) : base(nameof(DownBlock2D))
    {
        var channels = config.BlockOutChannels[block];
        resnets = nn.ModuleList(Enumerable.Range(0, config.LayersPerBlock.At(block))
            .Select(i => new ResnetBlock2D(config, i == 0 ? inChannels : channels, channels)).ToArray());
        downsamplers = addDownsample ? nn.ModuleList(new Downsample2D(channels, config.DownsamplePadding)) : null;
        RegisterComponents();
    }

    /// <inheritdoc />
    public (Tensor Hidden, IReadOnlyList<Tensor> Skips) Forward(Tensor hidden, Tensor temb, Tensor context, Tensor? contextMask)
    {
        var skips = new List<Tensor>();
        foreach (var resnet in resnets)
        {
            hidden = resnet.forward(hidden, temb);
            skips.Add(hidden);
        }
        if (downsamplers is not null)
        {
            hidden = downsamplers[0].call(hidden);
            skips.Add(hidden);
        }
        return (hidden, skips);
    }
}
