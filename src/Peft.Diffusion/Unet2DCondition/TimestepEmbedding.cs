// diffusers' models/embeddings.py: TimestepEmbedding (linear_1, activation, linear_2).
using Peft.Modeling;
using TorchSharp;
using static TorchSharp.torch;

namespace Peft.Diffusion.Unet2DCondition;

/// <summary>The MLP over the sinusoidal embedding (<c>time_embedding</c>): linear_1, activation, linear_2.</summary>
[TargetModules("linear_1", "linear_2")]
public sealed partial class TimestepEmbedding : nn.Module<Tensor, Tensor>
{
    private nn.Module<Tensor, Tensor> linear_1;
    private nn.Module<Tensor, Tensor> linear_2;
    private readonly Func<Tensor, Tensor> _activation;

    /// <summary>From <paramref name="inChannels"/> to <paramref name="timeEmbedDim"/>.</summary>
    public TimestepEmbedding(int inChannels, int timeEmbedDim, string activation) : base(nameof(TimestepEmbedding))
    {
        linear_1 = nn.Linear(inChannels, timeEmbedDim);
        linear_2 = nn.Linear(timeEmbedDim, timeEmbedDim);
        _activation = Activations.Get(activation);
        RegisterComponents();
    }

    /// <summary>(N, in) → (N, time_embed_dim).</summary>
    public override Tensor forward(Tensor embedding)
    {
        using var scope = torch.NewDisposeScope();
        return linear_2.call(_activation(linear_1.call(embedding))).MoveToOuterDisposeScope();
    }
}
