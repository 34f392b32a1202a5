// DoRA's magnitude vector for Linear and GPT-2 Conv1D layers, following peft/tuners/lora/dora.py
// (DoraLinearLayer) and peft/tuners/lora/variants.py (DoraLinearVariant: forward, merge, unmerge).
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Peft.Methods.Lora;

/// <summary>
/// Weight-decomposed LoRA (Liu et al., 2024): the adapted weight is
/// <c>m · (W + s·BA) / ‖W + s·BA‖</c>, row by row (one norm per output feature), with the trainable
/// magnitude <c>m</c> registered as <c>lora_magnitude_vector.&lt;adapter&gt;.weight</c> (saved as
/// <c>lora_magnitude_vector</c>). As the reference (section 4.3 of the paper), the norm is treated
/// as a constant: no gradient flows through it.
/// </summary>
/// <remarks>All weights here are in (out, in) layout; the owning <see cref="LoraLayer"/> transposes Conv1D's.</remarks>
public sealed class DoraMagnitude : nn.Module
{
#pragma warning disable IDE1006 // the reference's parameter name
    private readonly Parameter weight;
#pragma warning restore IDE1006

    /// <summary>The norm the last merge used: unmerging must divide by the same value, not one recomputed from the merged weight.</summary>
    private Tensor? _mergedNorm;

    /// <summary>Starts the magnitude at ‖W + s·BA‖, so the adapted layer first computes exactly W + s·BA.</summary>
    /// <param name="baseWeight">The base weight, (out, in).</param>
    /// <param name="loraWeight">B·A, (out, in), unscaled.</param>
    /// <param name="scaling">LoRA's scale s.</param>
    public DoraMagnitude(Tensor baseWeight, Tensor loraWeight, double scaling) : base(nameof(DoraMagnitude))
    {
        using (torch.no_grad())
        {
            weight = new Parameter(WeightNorm(baseWeight, loraWeight, scaling));
        }
        RegisterComponents();
    }

    /// <summary>The magnitude m, one entry per output feature.</summary>
    public Parameter Magnitude => weight;

    /// <summary>‖W + s·L‖ over the input dimension (the reference's get_weight_norm).</summary>
    public static Tensor WeightNorm(Tensor baseWeight, Tensor loraWeight, double scaling) =>
        torch.linalg.vector_norm(baseWeight + loraWeight * scaling, dims: [1]).to(baseWeight.dtype);

    /// <summary>
    /// What DoRA adds on top of <paramref name="result"/> (the layer's output so far):
    /// <c>(m/‖W+s·BA‖ − 1) · (result − bias) + m/‖W+s·BA‖ · s · B(A(x))</c>.
    /// </summary>
    /// <param name="x">The input, after dropout when <paramref name="result"/> is null.</param>
    /// <param name="a">lora_A.</param>
    /// <param name="b">lora_B.</param>
    /// <param name="scaling">LoRA's scale s.</param>
    /// <param name="baseWeight">The base weight, (out, in).</param>
    /// <param name="bias">The base layer's bias, if any.</param>
    /// <param name="result">
    /// The output so far, reused as <c>W·x + bias</c> when no dropout ran; null when dropout changed the
    /// input, so the base product is recomputed from it.
    /// </param>
    public Tensor Update(Tensor x, Linear a, Linear b, double scaling, Tensor baseWeight, Tensor? bias, Tensor? result)
    {
        using var scope = torch.NewDisposeScope();
        var loraWeight = torch.matmul(b.weight!, a.weight!).to(x.dtype);
        var norm = WeightNorm(baseWeight.to(x.dtype), loraWeight.detach(), scaling).detach();
        var scale = (weight / norm).view(1, -1);
        var loraResult = b.call(a.call(x));
        var baseResult = result is null
            ? torch.nn.functional.linear(x, baseWeight.to(x.dtype))
            : bias is null ? result : result - bias;
        return ((scale - 1) * baseResult + scale * loraResult * scaling).MoveToOuterDisposeScope();
    }

    /// <summary>The merged weight <c>m/‖W+Δ‖ · (W + Δ)</c>, remembering the norm for <see cref="Unmerged"/>.</summary>
    /// <param name="baseWeight">The base weight, (out, in).</param>
    /// <param name="delta">The scaled LoRA delta s·BA, (out, in).</param>
    public Tensor Merged(Tensor baseWeight, Tensor delta)
    {
        var norm = WeightNorm(baseWeight, delta, 1.0).detach();
        _mergedNorm?.Dispose();
        _mergedNorm = norm.DetachFromDisposeScope();   // outlives the merge's dispose scope
        return Factor(_mergedNorm) * (baseWeight + delta);
    }

    /// <summary>The base weight back from a merged one: <c>W' / (m/‖W+Δ‖) − Δ</c>, with the norm of the merge.</summary>
    /// <param name="mergedWeight">The merged weight, (out, in).</param>
    /// <param name="delta">The same delta that was merged, (out, in).</param>
    public Tensor Unmerged(Tensor mergedWeight, Tensor delta)
    {
        var norm = _mergedNorm ?? throw new InvalidOperationException("DoRA cannot unmerge an adapter it did not merge.");
        var restored = mergedWeight / Factor(norm) - delta;
        _mergedNorm = null;
        norm.Dispose();
        return restored;
    }

    private Tensor Factor(Tensor norm) => (weight.detach() / norm).view(-1, 1);

    /// <inheritdoc />
    protected override void Dispose(bool disposing)
    {
        if (disposing) _mergedNorm?.Dispose();
        base.Dispose(disposing);
    }
}
