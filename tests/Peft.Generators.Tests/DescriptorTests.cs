using System.Reflection;
using Microsoft.CodeAnalysis;
using Peft.Generators.Diagnostics;

namespace Peft.Generators.Tests;

/// <summary>Every diagnostic is tracked for release and documented.</summary>
public sealed class DescriptorTests
{
    public static TheoryData<string> Ids => new(
        typeof(DiagnosticDescriptors).GetFields(BindingFlags.Public | BindingFlags.Static)
            .Select(member => ((DiagnosticDescriptor)member.GetValue(null)!).Id)
            .Order());

    [Theory]
    [MemberData(nameof(Ids))]
    public void IsTrackedAndDocumented(string id)
    {
        var root = RepositoryRoot();

        Assert.Same(DiagnosticDescriptors.ById(id), DiagnosticDescriptors.ById(id));
        Assert.Contains($"{id} |", File.ReadAllText(Path.Combine(root, "src/Peft.Generators/AnalyzerReleases.Unshipped.md")), StringComparison.Ordinal);
        Assert.Contains($"| {id} |", File.ReadAllText(Path.Combine(root, "docs/GENERATOR.md")), StringComparison.Ordinal);
    }

    private static string RepositoryRoot([System.Runtime.CompilerServices.CallerFilePath] string thisFile = "")
    {
        var directory = Path.GetDirectoryName(thisFile);
        while (directory is not null && !File.Exists(Path.Combine(directory, "Peft.sln")))
        {
            directory = Path.GetDirectoryName(directory);
        }

        return directory ?? throw new InvalidOperationException($"No Peft.sln above {thisFile}.");
    }
}
