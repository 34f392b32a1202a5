using Spectre.Console.Testing;

namespace Peft.Cli.Tests;

/// <summary>One run of the <c>peft</c> command in-process, as Program.cs runs it, with its exit code and what it wrote.</summary>
internal sealed record CliRun(int ExitCode, string Console, string Output, string Error)
{
    public static async Task<CliRun> Of(params string[] args)
    {
        var console = new TestConsole();
        console.Profile.Width = 80;
        using var output = new StringWriter();
        using var error = new StringWriter();
        var exit = await PeftCli.RunAsync(args, console, output, error);
        return new CliRun(exit, console.Output, output.ToString(), error.ToString());
    }

    /// <summary>A user error: exit code 2, one line on the error writer, no stack trace.</summary>
    public string AssertUserError()
    {
        Assert.Equal(2, ExitCode);
        var lines = Error.TrimEnd().Split('\n');
        Assert.Single(lines);
        Assert.DoesNotContain("   at ", Error);
        return lines[0];
    }
}

internal static class TestFiles
{
    /// <summary>A path under the repository's tests/fixtures/hf-peft.</summary>
    public static string Fixture(params string[] parts)
    {
        for (var directory = new DirectoryInfo(AppContext.BaseDirectory); directory is not null; directory = directory.Parent)
        {
            var candidate = Path.Combine([directory.FullName, "tests", "fixtures", "hf-peft", .. parts]);
            if (Path.Exists(candidate)) return candidate;
        }
        throw new DirectoryNotFoundException("tests/fixtures/hf-peft not found");
    }
}
