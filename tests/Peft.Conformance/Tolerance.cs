using TorchSharp;
using static TorchSharp.torch;

namespace Peft.Conformance;

/// <summary>The fixture README's tolerances: |ours − ref| ≤ atol + rtol · max|ref|.</summary>
public sealed record Tolerance(double Atol, double Rtol)
{
    /// <summary>Logits and single losses.</summary>
    public static readonly Tolerance Logits = new(1e-5, 1e-5);
    /// <summary>Logits after merging.</summary>
    public static readonly Tolerance Merged = new(1e-5, 1e-4);
    /// <summary>Gradients.</summary>
    public static readonly Tolerance Gradients = new(1e-6, 1e-4);
    /// <summary>The AdamW loss trace.</summary>
    public static readonly Tolerance TrainLosses = new(1e-5, 1e-4);
    /// <summary>Adapter state after three AdamW steps.</summary>
    public static readonly Tolerance TrainFinal = new(1e-4, 1e-3);

    /// <summary>Throws <see cref="MismatchException"/> naming <paramref name="what"/> when the tensors differ beyond this tolerance.</summary>
    public void Check(string what, Tensor ours, Tensor reference)
    {
        if (!ours.shape.SequenceEqual(reference.shape))
        {
            throw new MismatchException($"{what}: shape [{string.Join(", ", ours.shape)}] vs reference [{string.Join(", ", reference.shape)}]");
        }
        using var scope = torch.NewDisposeScope();
        var a = ours.detach().to(ScalarType.Float64);
        var b = reference.to(ScalarType.Float64);
        var difference = (a - b).abs().max().item<double>();
        var bound = Atol + Rtol * b.abs().max().item<double>();
        if (!(difference <= bound))
        {
            throw new MismatchException($"{what}: max |diff| {difference:E2} > {bound:E2}");
        }
    }
}
