// diffusers' models/attention.py: FeedForward with GEGLU (net.0 = GEGLU(proj), net.1 = Dropout, net.2 = Linear).
using TorchSharp;
using TorchSharp.Modules;
using TorchSharp.Utils;
using static TorchSharp.torch;

namespace Peft.Diffusion.Unet2DCondition;

/// <summary>GEGLU (<c>ff.net.0</c>): one projection to twice the inner width, the first half gated by GELU of the second.</summary>
[TargetModules("proj")]
public sealed partial class Geglu : nn.Module<Tensor, Tensor>
{
    private nn.Module<Tensor, Tensor> proj;

    /// <summary>From <paramref name="channels"/> to <paramref name="inner"/>.</summary>
    public Geglu(int channels, int inner) : base("GEGLU")
    {
        proj = nn.Linear(channels, inner * 2);
        RegisterComponents();
    }

    /// <summary>(B, N, C) → (B, N, inner).</summary>
    public override Tensor forward(Tensor hidden)
    {
        using var scope = torch.NewDisposeScope();
        var parts = proj.call(hidden).chunk(2, dim: -1);
        return (parts[0] * nn.functional.gelu(parts[1])).MoveToOuterDisposeScope();
    }
}
