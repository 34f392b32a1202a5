using System.Collections;
using System.Reflection;
using Microsoft.CodeAnalysis;

namespace Peft.Generators.Tests;

/// <summary>The pipeline reuses its work when nothing it reads has changed.</summary>
public sealed class CachingTests
{
    [Fact]
    public void UnrelatedEditLeavesEveryStepCachedOrUnchanged()
    {
        var first = GeneratorHarness.Compile(Sources.All.Values.ToArray());
        var driver = GeneratorHarness.CreateDriver().RunGenerators(first);

        var second = first.AddSyntaxTrees(GeneratorHarness.Parse("namespace Demo; public sealed class Unrelated { public int Value { get; set; } }", "Unrelated.cs"));
        var result = driver.RunGenerators(second).GetRunResult().Results.Single();

        Assert.Equal(TrackingNames.All.Order(), result.TrackedSteps.Keys.Where(TrackingNames.All.Contains).Order());
        foreach (var name in TrackingNames.All)
        {
            var reasons = result.TrackedSteps[name].SelectMany(step => step.Outputs).Select(output => output.Reason).ToList();
            Assert.NotEmpty(reasons);
            Assert.All(reasons, reason => Assert.True(
                reason is IncrementalStepRunReason.Cached or IncrementalStepRunReason.Unchanged,
                $"Step {name} ran again ({reason}) after an unrelated edit."));
        }

        Assert.All(
            result.TrackedOutputSteps.SelectMany(step => step.Value).SelectMany(step => step.Outputs),
            output => Assert.Equal(IncrementalStepRunReason.Cached, output.Reason));
    }

    [Fact]
    public void MovingAClassWithAnErrorReReportsButDoesNotReEmit()
    {
        const string withError = Sources.Usings + """
            [TargetModules("c_attn", "missing")]
            public partial class Block : nn.Module<Tensor, Tensor>
            {
                private nn.Module<Tensor, Tensor> c_attn = nn.Linear(8, 8);

                public Block() : base(nameof(Block)) => RegisterComponents();

                public override Tensor forward(Tensor x) => c_attn.forward(x);
            }
            """;
        var first = GeneratorHarness.Compile(withError);
        var driver = GeneratorHarness.CreateDriver().RunGenerators(first);

        var moved = GeneratorHarness.Parse(withError.Replace("[TargetModules(", "// a new comment line\n[TargetModules("), "Input0.cs");
        var second = first.ReplaceSyntaxTree(first.SyntaxTrees.Single(), moved);
        var run = driver.RunGenerators(second).GetRunResult();
        var result = run.Results.Single();

        Assert.Equal(IncrementalStepRunReason.Modified, SingleReason(result, TrackingNames.ModuleSlotsDiagnostics));
        Assert.Equal(IncrementalStepRunReason.Unchanged, SingleReason(result, TrackingNames.ModuleSlotsSpecs));
        Assert.Equal(11, Assert.Single(run.Diagnostics).Location.GetLineSpan().StartLinePosition.Line);
    }

    [Fact]
    public void PipelineModelsHoldNoRoslynObjects()
    {
        var result = GeneratorHarness.Run(Sources.All.Values.ToArray()).Result;

        foreach (var name in TrackingNames.All)
        {
            foreach (var output in result.TrackedSteps[name].SelectMany(step => step.Outputs))
            {
                AssertPlainData(output.Value, name, depth: 0);
            }
        }
    }

    private static IncrementalStepRunReason SingleReason(GeneratorRunResult result, string step) =>
        result.TrackedSteps[step].SelectMany(s => s.Outputs).Single().Reason;

    /// <summary>Walks the object graph (test-only reflection) and fails on anything that roots a compilation.</summary>
    private static void AssertPlainData(object? value, string step, int depth)
    {
        if (value is null || value is string || value.GetType().IsPrimitive || value.GetType().IsEnum)
        {
            return;
        }

        Assert.False(
            value is ISymbol or SyntaxNode or Location or Compilation or SemanticModel or SyntaxTree,
            $"Step {step} holds a {value.GetType().Name}, which breaks caching.");
        Assert.True(depth < 10, $"Step {step} nests too deep.");

        if (value is IEnumerable items)
        {
            foreach (var item in items)
            {
                AssertPlainData(item, step, depth + 1);
            }

            return;
        }

        foreach (var field in value.GetType().GetFields(BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic))
        {
            AssertPlainData(field.GetValue(value), step, depth + 1);
        }
    }
}
