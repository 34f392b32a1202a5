namespace Peft.Conformance;

/// <summary>What happened to one case.</summary>
public enum Outcome
{
    /// <summary>Every check matched the reference.</summary>
    Pass,
    /// <summary>A check differed or the code threw.</summary>
    Fail,
    /// <summary>The architecture or method is not available.</summary>
    Skip,
    /// <summary>
    /// Every check matched except one listed in <see cref="ConformanceRunner.KnownGaps"/>, a difference
    /// investigated and explained there (never a tolerance: the check and its bound stay as they are).
    /// </summary>
    KnownGap,
}

/// <summary>One case's outcome, printed as <c>PASS name</c>, <c>FAIL name: why</c>, <c>GAP name: why</c> or <c>SKIP name: why</c>.</summary>
public sealed record CaseResult(string Name, Outcome Outcome, string Detail = "")
{
    /// <inheritdoc />
    public override string ToString() => Outcome switch
    {
        Outcome.Pass when Detail.Length == 0 => $"PASS {Name}",
        Outcome.Pass => $"PASS {Name} ({Detail})",
        Outcome.Fail => $"FAIL {Name}: {Detail}",
        Outcome.KnownGap => $"GAP  {Name}: {Detail}",
        _ => $"SKIP {Name}: {Detail}",
    };
}

/// <summary>A check that found a difference; the message says which and by how much.</summary>
public sealed class MismatchException(string message) : Exception(message);

/// <summary>The architecture or method a case needs is not registered.</summary>
public sealed class UnavailableException(string message) : Exception(message);
