using TorchSharp;
using static TorchSharp.torch;

namespace Peft.Conformance;

/// <summary>One comparison of a case: a tensor against the reference's, or an exact check (ids, lines).</summary>
/// <param name="What">The check's name, the same in every precision (<c>grad &lt;param&gt;</c>, <c>peft_logits</c>, ...).</param>
/// <param name="Bound">The tolerance's bound atol + rtol · max|ref| (0 for an exact check).</param>
/// <param name="Difference">max |ours − ref| (for an exact check: 0 when equal, infinity otherwise).</param>
/// <param name="Ours">Our value as float64 (null for an exact check).</param>
/// <param name="Reference">The reference's value as float64 (null for an exact check).</param>
/// <param name="Detail">For a failing exact check, what differed.</param>
public sealed record Comparison(string What, double Bound, double Difference, Tensor? Ours, Tensor? Reference, string Detail = "")
{
    /// <summary>Within the tolerance (or equal).</summary>
    public bool Passed => Difference <= Bound;

    /// <summary>The message a failing comparison throws with in a plain run.</summary>
    public string Message => Ours is null ? $"{What}: {Detail}" : $"{What}: max |diff| {Difference:E2} > {Bound:E2}";
}

/// <summary>
/// Where a case's comparisons go. A plain run throws on the first failure (<see cref="KeepGoing"/> false);
/// the float64 run keeps every comparison, so that each failing one can be set beside the same check in float32.
/// </summary>
public sealed class CheckLog(bool keepGoing, IReadOnlySet<string>? knownGaps = null)
{
    private readonly List<Comparison> _comparisons = [];
    private readonly IReadOnlySet<string> _knownGaps = knownGaps ?? new HashSet<string>();

    /// <summary>Records failures and continues, instead of throwing <see cref="MismatchException"/>.</summary>
    public bool KeepGoing { get; } = keepGoing;

    /// <summary>The failing comparisons that are known gaps (see <see cref="ConformanceRunner.KnownGaps"/>).</summary>
    public IEnumerable<Comparison> Gaps => _comparisons.Where(c => !c.Passed && _knownGaps.Contains(c.What));

    /// <summary>Every comparison so far, in order.</summary>
    public IReadOnlyList<Comparison> Comparisons => _comparisons;

    /// <summary>Compares <paramref name="ours"/> with <paramref name="reference"/> under <paramref name="tolerance"/>.</summary>
    public void Compare(string what, Tolerance tolerance, Tensor ours, Tensor reference)
    {
        if (!ours.shape.SequenceEqual(reference.shape))
        {
            Exact(what, false, $"shape [{string.Join(", ", ours.shape)}] vs reference [{string.Join(", ", reference.shape)}]");
            return;
        }
        // Kept past the case's dispose scope only as long as the log is (the runner's scope holds both runs).
        var a = ours.detach().to(ScalarType.Float64).clone();
        var b = reference.detach().to(ScalarType.Float64).clone();
        var difference = (a - b).abs().max().item<double>();
        var bound = tolerance.Atol + tolerance.Rtol * b.abs().max().item<double>();
        if (double.IsNaN(difference)) difference = double.PositiveInfinity;
        Add(new Comparison(what, bound, difference, a, b));
    }

    /// <summary>An exact check (generated ids, the trainable-parameter line, saved keys).</summary>
    public void Exact(string what, bool equal, string detail) =>
        Add(new Comparison(what, 0, equal ? 0 : double.PositiveInfinity, null, null, equal ? "" : detail));

    private void Add(Comparison comparison)
    {
        _comparisons.Add(comparison);
        if (!comparison.Passed && !KeepGoing && !_knownGaps.Contains(comparison.What)) throw new MismatchException(comparison.Message);
    }
}
