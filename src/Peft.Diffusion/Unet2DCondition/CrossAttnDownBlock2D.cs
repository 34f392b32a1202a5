// diffusers' models/unets/unet_2d_blocks.py: CrossAttnDownBlock2D (ResNet → transformer, repeated; then a downsampler).
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Peft.Diffusion.Unet2DCondition;

/// <summary><c>down_blocks.N</c> of type CrossAttnDownBlock2D: resnets.M, attentions.M, downsamplers.0 (all but the last block).</summary>
public sealed class CrossAttnDownBlock2D : nn.Module, IUNetDownBlock
{
    private readonly ModuleList<ResnetBlock2D> resnets;
    private readonly ModuleList<Transformer2DModel> attentions;
    private readonly ModuleList<Downsample2D>? downsamplers;

    /// <summary>Down block <paramref name="block"/> from <paramref name="inChannels"/> channels.</summary>
    public CrossAttnDownBlock2D(UNet2DConditionConfig config, int block, int inChannels, bool addDownsample) : base(nameof(CrossAttnDownBlock2D))
    {
        var channels = config.BlockOutChannels[block];
        var layers = config.LayersPerBlock.At(block);
        resnets = nn.ModuleList(Enumerable.Range(0, layers).Select(i => new ResnetBlock2D(config, i == 0 ? inChannels : channels, channels)).ToArray());
        attentions = nn.ModuleList(Enumerable.Range(0, layers).Select(_ => new Transformer2DModel(config, channels,
            config.AttentionHeadDim.At(block), config.CrossAttentionDim.At(block), config.TransformerLayersPerBlock.At(block))).ToArray());
        downsamplers = addDownsample ? nn.ModuleList(new Downsample2D(channels, config.DownsamplePadding)) : null;
        RegisterComponents();
    }

    /// <inheritdoc />
    public (Tensor Hidden, IReadOnlyList<Tensor> Skips) Forward(Tensor hidden, Tensor temb, Tensor context, Tensor? contextMask)
    {
        var skips = new List<Tensor>();
        for (int i = 0; i < resnets.Count; i++)
        {
            hidden = attentions[i].forward(resnets[i].forward(hidden, temb), context, contextMask);
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
