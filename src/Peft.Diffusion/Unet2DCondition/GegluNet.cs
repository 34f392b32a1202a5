// diffusers' models/attention.py: FeedForward with GEGLU (net.0 = GEGLU(proj), net.1 = Dropout, net.2 = Linear).
using TorchSharp;
using TorchSharp.Modules;
using TorchSharp.Utils;
using static TorchSharp.torch;

namespace Peft.Diffusion.Unet2DCondition;

/// <summary>diffusers' <c>ff.net</c> ModuleList: GEGLU as <c>0</c>, dropout as <c>1</c>, the output Linear as <c>2</c>.</summary>
[TargetModules("2")]
public sealed partial class GegluNet : nn.Module<Tensor, Tensor>
{
    [ComponentName(Name = "0")]
    private readonly Geglu geglu;
    [ComponentName(Name = "1")]
    private readonly Dropout dropout;
    [ComponentName(Name = "2")]
    private nn.Module<Tensor, Tensor> output;

    /// <summary>A feed-forward of inner width 4 × <paramref name="channels"/>.</summary>
    public GegluNet(int channels, double dropoutRate) : base(nameof(GegluNet))
    {
        var inner = channels * 4;
        geglu = new Geglu(channels, inner);
        dropout = nn.Dropout(dropoutRate);
        output = nn.Linear(inner, channels);
        RegisterComponents();
    }

    /// <inheritdoc />
    public override Tensor forward(Tensor hidden)
    {
        using var scope = torch.NewDisposeScope();
        return output.call(dropout.call(geglu.call(hidden))).MoveToOuterDisposeScope();
    }
}
