// Stochastic depth as transformers' vision models apply it (drop_path in modeling_swin.py / modeling_segformer.py).
using TorchSharp;
using static TorchSharp.torch;

namespace Peft.Backbones.Shared;

/// <summary>
/// Drops a residual branch for whole samples with probability <c>rate</c> in training, scaling the
/// kept ones by 1 / (1 − rate); the identity in evaluation.
/// </summary>
public sealed class DropPath : nn.Module<Tensor, Tensor>
{
    private readonly double _rate;

    /// <summary>A drop path with the given rate in (0, 1).</summary>
    public DropPath(double rate) : base(nameof(DropPath))
    {
        if (rate is <= 0 or >= 1) throw new ArgumentOutOfRangeException(nameof(rate), rate, "The drop-path rate must be in (0, 1).");
        _rate = rate;
    }

    /// <summary>A <see cref="DropPath"/> for a positive rate, else the identity (transformers' choice too).</summary>
    public static nn.Module<Tensor, Tensor> Create(double rate) => rate > 0 ? new DropPath(rate) : nn.Identity();

    /// <inheritdoc />
    public override Tensor forward(Tensor input)
    {
        if (!training) return input.alias();
        using var scope = torch.NewDisposeScope();
        var keep = 1 - _rate;
        var shape = new long[input.dim()];
        Array.Fill(shape, 1L);
        shape[0] = input.shape[0];
        var mask = (torch.rand(shape, input.dtype, input.device) + keep).floor_();
        return (input.div(keep) * mask).MoveToOuterDisposeScope();
    }
}
