using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Peft.Diffusion.Unet2DCondition;

/// <summary>
/// torch.nn.GroupNorm with affine weight (ones) and bias (zeros), registered as <c>weight</c> and <c>bias</c>.
/// </summary>
/// <remarks>
/// TorchSharp 0.107's GroupNorm module was seen holding uninitialised affine parameters (values of 1e34) instead of
/// ones and zeros; this one owns its parameters. The statistics are torch's: mean and biased variance over each group's
/// channels and positions, in the input's dtype.
/// </remarks>
public sealed class GroupNorm : nn.Module<Tensor, Tensor>
{
    private readonly long _groups;
    private readonly double _eps;
    private readonly Parameter weight;
    private readonly Parameter bias;

    /// <summary>A GroupNorm of <paramref name="groups"/> groups over <paramref name="channels"/> channels.</summary>
    public GroupNorm(int groups, int channels, double eps) : base(nameof(GroupNorm))
    {
        _groups = groups;
        _eps = eps;
        weight = new Parameter(torch.ones(channels));
        bias = new Parameter(torch.zeros(channels));
        RegisterComponents();
    }

    /// <summary>(B, C, ...) normalised over each group of C / groups channels and the spatial dimensions.</summary>
    public override Tensor forward(Tensor input)
    {
        using var scope = torch.NewDisposeScope();
        var grouped = input.reshape(input.shape[0], _groups, -1);                                  // (B, G, C/G · H · W)
        var centred = grouped - grouped.mean([-1], keepdim: true);
        var normalised = centred * torch.rsqrt(centred.pow(2).mean([-1], keepdim: true) + _eps);
        var affine = new long[input.dim()];
        Array.Fill(affine, 1L);
        affine[1] = -1;                                                                            // (1, C, 1, 1)
        return (normalised.reshape(input.shape) * weight.reshape(affine) + bias.reshape(affine)).MoveToOuterDisposeScope();
    }
}
