using TorchSharp;

namespace Peft.Conformance;

/// <summary>What a check of the float64 run says about a difference from the float32 reference.</summary>
public enum Cause
{
    /// <summary>
    /// Our float64 matches the reference and our float32 does not: either our float32 path rounds worse than PyTorch's,
    /// or the value is below what float32 resolves (an AdamW trace decided by gradient entries at rounding level), where
    /// the reference's float32 lands near the exact value by chance. The check in the float32 run tells which.
    /// </summary>
    OurFloat32,
    /// <summary>Our float64 misses the reference by no more than float32 rounding moves our own value: the reference's float32 can be that far from exact.</summary>
    Rounding,
    /// <summary>Our float64 misses the reference by much more than float32 rounding moves our value: the math differs.</summary>
    Ours,
}

/// <summary>
/// One check set beside itself in both precisions: |ours32 − ref|, |ours64 − ref| and |ours32 − ours64| (each a max over
/// the tensor), with the tolerance's bound.
/// </summary>
/// <param name="What">The check.</param>
/// <param name="Bound">atol + rtol · max|ref|.</param>
/// <param name="Ours32">max |ours32 − ref|, or NaN when the float32 run did not reach this check.</param>
/// <param name="Ours64">max |ours64 − ref|.</param>
/// <param name="Spread">max |ours32 − ours64|, or NaN when the float32 run did not reach this check.</param>
public sealed record PrecisionReport(string What, double Bound, double Ours32, double Ours64, double Spread)
{
    /// <summary>
    /// How far beyond our own float32 spread the float64 gap may be and still be called rounding: the reference's
    /// float32 sums in another order than ours, so its rounding error is of the same size as ours, not the same value.
    /// </summary>
    public const double RoundingFactor = 2;

    /// <summary>The report for one check of the float64 run and the same check of the float32 run (null if not reached).</summary>
    public static PrecisionReport Of(Comparison float64, Comparison? float32)
    {
        var spread = double.NaN;
        if (float32?.Ours is { } ours32 && float64.Ours is { } ours64 && ours32.shape.SequenceEqual(ours64.shape))
        {
            spread = (ours32 - ours64).abs().max().item<double>();
        }
        return new PrecisionReport(float64.What, float64.Bound, float32?.Difference ?? double.NaN, float64.Difference, spread);
    }

    /// <summary>Float64 within the tolerance.</summary>
    public bool PassesInFloat64 => Ours64 <= Bound;

    /// <summary>The classification (see <see cref="Conformance.Cause"/>); null when both precisions pass.</summary>
    public Cause? Cause =>
        PassesInFloat64 ? (Ours32 > Bound ? Conformance.Cause.OurFloat32 : null)
        : Ours64 <= RoundingFactor * Spread ? Conformance.Cause.Rounding
        : Conformance.Cause.Ours;

    /// <inheritdoc />
    public override string ToString()
    {
        var verdict = Cause switch
        {
            Conformance.Cause.OurFloat32 => "float32 only: our float64 matches the reference, our float32 does not",
            Conformance.Cause.Rounding => "rounding: float32 does not resolve this value",
            Conformance.Cause.Ours => "ours: the gap stays in float64",
            _ => "passes",
        };
        return $"{What}: |ours32−ref| {Ours32:E2}, |ours64−ref| {Ours64:E2}, |ours32−ours64| {Spread:E2} (bound {Bound:E2}): {verdict}";
    }
}
