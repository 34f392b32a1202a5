using Peft.Conformance;
using Peft.Tests.Checkpoints;

namespace Peft.Tests.Conformance;

/// <summary>
/// Every case Hugging Face PEFT wrote, through the same runner as the conformance console:
/// a case whose architecture and method exist must reproduce the reference; the rest are skipped.
/// </summary>
public class ReferenceCaseTests
{
    private static readonly ConformanceRunner Runner = new(Fixtures.Root);

    public static TheoryData<string> Cases()
    {
        var data = new TheoryData<string>();
        foreach (var name in Runner.SelectCases([])) data.Add(name);
        return data;
    }

    [SkippableTheory]
    [MemberData(nameof(Cases))]
    public void ReproducesTheReference(string caseName)
    {
        var result = Runner.Run(caseName);
        Skip.If(result.Outcome is Outcome.Skip or Outcome.KnownGap, result.Detail);
        Assert.True(result.Outcome == Outcome.Pass, result.ToString());
    }
}
