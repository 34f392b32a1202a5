namespace Peft.Generators.Tests;

/// <summary>The generated source for representative inputs, compared with approved files in Snapshots/.</summary>
public sealed class SnapshotTests
{
    [Fact]
    public void PlainClass() => VerifyGenerated(Sources.PlainClass);

    [Fact]
    public void NoNames() => VerifyGenerated(Sources.NoNames);

    [Fact]
    public void ComponentName() => VerifyGenerated(Sources.ComponentName);

    [Fact]
    public void NestedGeneric() => VerifyGenerated(Sources.NestedGeneric);

    [Fact]
    public void DefaultTargets() => VerifyGenerated(Sources.DefaultTargets);

    [Fact]
    public void HintNamesAreUniquePerType()
    {
        var run = GeneratorHarness.Run(Sources.All.Values.ToArray());

        Assert.Equal(
            [
                "Demo.Gpt2.Attention.TargetModules.g.cs",
                "Demo.Llama.SelfAttention.TargetModules.g.cs",
                "Demo.Nested.Gpt2.Stack{TConfig}.Block{TCache}.TargetModules.g.cs",
                "Demo.Plugins.LlamaArchitecture.DefaultTargets.g.cs",
                "Mlp.TargetModules.g.cs",
            ],
            run.Sources.Keys.Order(StringComparer.Ordinal));
    }

    private static void VerifyGenerated(string input, [System.Runtime.CompilerServices.CallerMemberName] string testName = "")
    {
        var run = GeneratorHarness.Run(input);

        Assert.Empty(run.Result.Diagnostics);
        Assert.Empty(run.CompilationProblems);
        Snapshot.Verify(run.SingleSource, testName: testName);
    }
}
