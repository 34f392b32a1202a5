using System.Collections.Immutable;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.Text;
using Peft.Plugins;

namespace Peft.Generators.Tests;

/// <summary>
/// Compiles test inputs against the real TorchSharp and Peft.Abstractions assemblies and runs
/// <see cref="TargetModulesGenerator"/> over them with a <see cref="CSharpGeneratorDriver"/>.
/// </summary>
internal static class GeneratorHarness
{
    public static readonly CSharpParseOptions ParseOptions = new(LanguageVersion.Latest);

    private static readonly ImmutableArray<MetadataReference> s_references = CreateReferences();

    /// <summary>A compilation of <paramref name="sources"/>, files named Input0.cs, Input1.cs...</summary>
    public static CSharpCompilation Compile(params string[] sources) => CSharpCompilation.Create(
        "GeneratorInput",
        sources.Select((source, i) => Parse(source, $"Input{i}.cs")),
        s_references,
        new CSharpCompilationOptions(
            OutputKind.DynamicallyLinkedLibrary,
            nullableContextOptions: NullableContextOptions.Enable,
            // As MSBuild does: assembly version unification notes are not problems.
            specificDiagnosticOptions: new Dictionary<string, ReportDiagnostic>
            {
                ["CS1701"] = ReportDiagnostic.Suppress,
                ["CS1702"] = ReportDiagnostic.Suppress,
            }));

    public static SyntaxTree Parse(string source, string path) =>
        CSharpSyntaxTree.ParseText(SourceText.From(source, System.Text.Encoding.UTF8), ParseOptions, path);

    /// <summary>A driver that records every step, so tests can read <c>TrackedSteps</c>.</summary>
    public static GeneratorDriver CreateDriver() => CSharpGeneratorDriver.Create(
        generators: [new TargetModulesGenerator().AsSourceGenerator()],
        parseOptions: ParseOptions,
        driverOptions: new GeneratorDriverOptions(IncrementalGeneratorOutputKind.None, trackIncrementalGeneratorSteps: true));

    /// <summary>Runs the generator once over <paramref name="sources"/>.</summary>
    public static GeneratorRun Run(params string[] sources)
    {
        var input = Compile(sources);
        var driver = CreateDriver().RunGeneratorsAndUpdateCompilation(input, out var output, out _);
        return new GeneratorRun(driver.GetRunResult().Results.Single(), output);
    }

    private static ImmutableArray<MetadataReference> CreateReferences()
    {
        // The framework's own assemblies, then the two this project's classes are written against.
        var frameworkDirectory = Path.GetDirectoryName(typeof(object).Assembly.Location)!;
        var trusted = ((string)AppContext.GetData("TRUSTED_PLATFORM_ASSEMBLIES")!).Split(Path.PathSeparator);
        var framework = trusted.Where(path => Path.GetDirectoryName(path) == frameworkDirectory);
        return framework
            .Append(typeof(TorchSharp.torch).Assembly.Location)
            .Append(typeof(IArchitecture).Assembly.Location)
            .Distinct()
            .Select(path => (MetadataReference)MetadataReference.CreateFromFile(path))
            .ToImmutableArray();
    }
}

/// <summary>What one generator run produced.</summary>
/// <param name="Result">The generator's result: sources, diagnostics, tracked steps.</param>
/// <param name="Output">The input compilation plus the generated sources.</param>
internal sealed record GeneratorRun(GeneratorRunResult Result, Compilation Output)
{
    /// <summary>The generated files' text by hint name.</summary>
    public IReadOnlyDictionary<string, string> Sources =>
        Result.GeneratedSources.ToDictionary(s => s.HintName, s => s.SourceText.ToString());

    /// <summary>The one generated file's text.</summary>
    public string SingleSource => Result.GeneratedSources.Single().SourceText.ToString();

    /// <summary>Errors and warnings of the compilation with the generated code added.</summary>
    public IReadOnlyList<Diagnostic> CompilationProblems =>
        Output.GetDiagnostics().Where(d => d.Severity >= DiagnosticSeverity.Warning).ToList();
}

/// <summary>Test sources with one span marked <c>[|...|]</c>, the place a diagnostic must point at.</summary>
internal static class Markup
{
    public static (string Source, TextSpan Span) Parse(string markup)
    {
        var start = markup.IndexOf("[|", StringComparison.Ordinal);
        var end = markup.IndexOf("|]", start + 2, StringComparison.Ordinal);
        Assert.True(start >= 0 && end > start, "Test source needs one [|...|] span.");
        var source = markup.Remove(end, 2).Remove(start, 2);
        return (source, new TextSpan(start, end - start - 2));
    }
}
