// diffusers' models/unets/unet_2d_blocks.py: CrossAttnUpBlock2D (cat skip → ResNet → transformer, repeated; then an upsampler).
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Peft.Diffusion.Unet2DCondition;

/// <summary><c>up_blocks.N</c> of type CrossAttnUpBlock2D: resnets.M, attentions.M, upsamplers.0 (all but the last block).</summary>
public sealed class CrossAttnUpBlock2D : nn.Module, IUNetUpBlock
{
    private readonly ModuleList<ResnetBlock2D> resnets;
    private readonly ModuleList<Transformer2DModel> attentions;
    private readonly ModuleList<Upsample2D>? upsamplers;

    /// <summary>An up block whose channels and settings <paramref name="layout"/> gives.</summary>
    public CrossAttnUpBlock2D(UNet2DConditionConfig config, UpBlockLayout layout) : base(nameof(CrossAttnUpBlock2D))
    {
        resnets = nn.ModuleList(layout.ResnetInputs().Select(input => new ResnetBlock2D(config, input, layout.OutChannels)).ToArray());
        attentions = nn.ModuleList(layout.ResnetInputs().Select(_ => new Transformer2DModel(config, layout.OutChannels,
            config.AttentionHeadDim.At(layout.DownBlock), config.CrossAttentionDim.At(layout.DownBlock), config.TransformerLayersPerBlock.At(layout.DownBlock))).ToArray());
        upsamplers = layout.AddUpsample ? nn.ModuleList(new Upsample2D(layout.OutChannels)) : null;
        RegisterComponents();
    }

    /// <inheritdoc />
    public int SkipCount => resnets.Count;

    /// <inheritdoc />
    public Tensor Forward(Tensor hidden, IReadOnlyList<Tensor> skips, Tensor temb, Tensor context, Tensor? contextMask, long[]? upsampleSize)
    {
        using var scope = torch.NewDisposeScope();
        for (int i = 0; i < resnets.Count; i++)
        {
            var joined = torch.cat([hidden, skips[skips.Count - 1 - i]], dim: 1);
            hidden = attentions[i].forward(resnets[i].forward(joined, temb), context, contextMask);
        }
        if (upsamplers is not null) hidden = upsamplers[0].forward(hidden, upsampleSize ?? [hidden.shape[2] * 2, hidden.shape[3] * 2]);
        return hidden.MoveToOuterDisposeScope();
    }
}
