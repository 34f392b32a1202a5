using TorchSharp;
using TorchSharp.Modules;
using TorchSharp.Utils;
using static TorchSharp.torch;

namespace Peft.Diffusion.Unet2DCondition;

/// <summary>
/// diffusers' <c>to_out</c>, a ModuleList of [Linear, Dropout]: the projection registers as <c>0</c>, so its path is
/// <c>attn1.to_out.0</c> and LoRA targets it as diffusers' scripts do (<c>"to_out.0"</c>).
/// </summary>
[TargetModules("0")]
public sealed partial class AttentionOutput : nn.Module<Tensor, Tensor>
{
    [ComponentName(Name = "0")]
    private nn.Module<Tensor, Tensor> projection;
    [ComponentName(Name = "1")]
    private readonly Dropout dropout;

    /// <summary>A projection from <paramref name="inner"/> to <paramref name="channels"/>, with a bias.</summary>
    public AttentionOutput(int inner, int channels, double dropoutRate) : base(nameof(AttentionOutput))
    {
        projection = nn.Linear(inner, channels);
        dropout = nn.Dropout(dropoutRate);
        RegisterComponents();
    }

    /// <inheritdoc />
    public override Tensor forward(Tensor hidden)
    {
        using var scope = torch.NewDisposeScope();
        return dropout.call(projection.call(hidden)).MoveToOuterDisposeScope();
    }
}
