// diffusers' models/unets/unet_2d_blocks.py: UpBlock2D (cat skip → ResNet, repeated; then an upsampler).
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Peft.Diffusion.Unet2DCondition;

/// <summary><c>up_blocks.N</c> of type UpBlock2D: resnets.M and upsamplers.0 (all but the last block); no attention.</summary>
public sealed class UpBlock2D : nn.Module, IUNetUpBlock
{
    private readonly ModuleList<ResnetBlock2D> resnets;
    private readonly ModuleList<Upsample2D>? upsamplers;

    /// <summary>An up block whose channels <paramref name="layout"/> gives.</summary>
    public UpBlock2D(UNet2DConditionConfig config, UpBlockLayout layout) : base(nameof(UpBlock2D))
    {
        resnets = nn.ModuleList(layout.ResnetInputs().Select(input => new ResnetBlock2D(config, input, layout.OutChannels)).ToArray());
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
            hidden = resnets[i].forward(torch.cat([hidden, skips[skips.Count - 1 - i]], dim: 1), temb);
        }
        if (upsamplers is not null) hidden = upsamplers[0].forward(hidden, upsampleSize ?? [hidden.shape[2] * 2, hidden.shape[3] * 2]);
        return hidden.MoveToOuterDisposeScope();
    }
}
