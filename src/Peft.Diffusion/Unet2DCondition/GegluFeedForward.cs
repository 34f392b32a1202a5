// diffusers' models/attention.py: FeedForward with GEGLU (net.0 = GEGLU(proj), net.1 = Dropout, net.2 = Linear).
using TorchSharp;
using static TorchSharp.torch;

namespace Peft.Diffusion.Unet2DCondition;

/// <summary>The transformer block's feed-forward (<c>ff</c>), holding <c>net</c> as diffusers does.</summary>
public sealed class GegluFeedForward : nn.Module<Tensor, Tensor>
{
    private readonly GegluNet net;

    /// <summary>A feed-forward over <paramref name="channels"/>.</summary>
    public GegluFeedForward(int channels, double dropout) : base("FeedForward")
    {
        net = new GegluNet(channels, dropout);
        RegisterComponents();
    }

    /// <inheritdoc />
    public override Tensor forward(Tensor hidden) => net.call(hidden);
}
