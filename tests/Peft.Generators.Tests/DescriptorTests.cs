using System.Reflection;
using Microsoft.CodeAnalysis;
using Peft.Generators.Diagnostics;

namespace Peft.Generators.Tests;

/// <summary>Every diagnostic is tracked for release and documented.</summary>
public sealed class DescriptorTests
{
    private static IEnumerable<string> DeclaredIds() =>
        typeof(DiagnosticDescriptors).GetFields(BindingFlags.Public | BindingFlags.Static)
            .Where(member => member.FieldType == typeof(DiagnosticDescriptor))
            .Select(member => ((DiagnosticDescriptor)member.GetValue(null)!).Id)
            .Order();

    public static TheoryData<string> Ids => new(DeclaredIds());

    [Fact]
    public void AllListsEveryDescriptorOnceInIdOrder() =>
        Assert.Equal(DeclaredIds().ToList(), DiagnosticDescriptors.All.Select(d => d.Id).ToList());

    [Theory]
    [MemberData(nameof(Ids))]
    public void IsTrackedAndDocumented(string id)
    {
        var root = RepositoryRoot();

        Assert.Same(DiagnosticDescriptors.ById(id), DiagnosticDescriptors.ById(id));
        Assert.Contains($"{id} |", File.ReadAllText(Path.Combine(root, "src/Peft.Generators/AnalyzerReleases.Unshipped.md")), StringComparison.Ordinal);
        // The help link is the diagnostic's anchored row in docs/GENERATOR.md.
        var help = DiagnosticDescriptors.ById(id).HelpLinkUri;
        Assert.EndsWith($"docs/GENERATOR.md#{id.ToLowerInvariant()}", help, StringComparison.Ordinal);
        Assert.Contains($"| <a id=\"{id.ToLowerInvariant()}\"></a>{id} |", File.ReadAllText(Path.Combine(root, "docs/GENERATOR.md")), StringComparison.Ordinal);
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
