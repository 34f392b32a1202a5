namespace Peft.Generators.Tests;

/// <summary>
/// Adapters replace modules through generated code, never through reflection: neither the
/// generated source nor the adapter layer of Peft.Abstractions and Peft.Methods may use it.
/// </summary>
public sealed class ReflectionTests
{
    private static readonly string[] s_reflectionMarkers = ["System.Reflection", "BindingFlags", ".GetField(", ".GetProperty(", "Activator.CreateInstance"];

    public static TheoryData<string> Inputs => new(Sources.All.Keys);

    [Theory]
    [MemberData(nameof(Inputs))]
    public void GeneratedSourceUsesNoReflection(string input)
    {
        var source = GeneratorHarness.Run(Sources.All[input]).SingleSource;

        Assert.All(s_reflectionMarkers, marker => Assert.DoesNotContain(marker, source, StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("src/Peft.Abstractions/Tuners")]
    [InlineData("src/Peft.Abstractions/Layers")]
    [InlineData("src/Peft.Abstractions/Modules")]
    [InlineData("src/Peft.Methods")]
    public void AdapterLayerSourcesUseNoReflection(string folder)
    {
        var directory = Path.Combine(RepositoryRoot(), folder);
        Assert.True(Directory.Exists(directory), $"{directory} is missing.");

        var offenders =
            from file in Directory.EnumerateFiles(directory, "*.cs", SearchOption.AllDirectories)
            where !file.Contains($"{Path.DirectorySeparatorChar}obj{Path.DirectorySeparatorChar}", StringComparison.Ordinal)
                && !file.Contains($"{Path.DirectorySeparatorChar}bin{Path.DirectorySeparatorChar}", StringComparison.Ordinal)
            from line in File.ReadLines(file).Select((text, index) => (text, number: index + 1))
            where s_reflectionMarkers.Any(marker => line.text.Contains(marker, StringComparison.Ordinal))
            select $"{Path.GetRelativePath(RepositoryRoot(), file)}:{line.number}: {line.text.Trim()}";

        Assert.Empty(offenders);
    }

    private static string RepositoryRoot([System.Runtime.CompilerServices.CallerFilePath] string thisFile = "")
    {
        for (var directory = Path.GetDirectoryName(thisFile); directory is not null; directory = Path.GetDirectoryName(directory))
        {
            if (File.Exists(Path.Combine(directory, "Peft.sln")))
            {
                return directory;
            }
        }

        throw new InvalidOperationException($"No Peft.sln above {thisFile}.");
    }
}
