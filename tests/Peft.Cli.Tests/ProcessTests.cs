using System.Diagnostics;

namespace Peft.Cli.Tests;

/// <summary>The real <c>peft</c> process (Peft.Cli.dll under dotnet): exit codes and standard error as a shell sees them.</summary>
public sealed class ProcessTests
{
    private static (int ExitCode, string Output, string Error) Run(params string[] args) => Run(new Dictionary<string, string>(), args);

    private static (int ExitCode, string Output, string Error) Run(Dictionary<string, string> environment, params string[] args)
    {
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var (name, value) in environment) start.Environment[name] = value;
        start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "Peft.Cli.dll"));
        foreach (var arg in args) start.ArgumentList.Add(arg);
        using var process = Process.Start(start)!;
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        Assert.True(process.WaitForExit(TimeSpan.FromMinutes(2)), "peft did not exit");
        return (process.ExitCode, output.Result, error.Result);
    }

    [Fact]
    public void ABadValueExitsWith2AndOneLineWithoutAStackTrace()
    {
        var (exit, _, error) = Run("finetune", "--epochs", "abc");
        Assert.Equal(2, exit);
        Assert.Equal("peft finetune: --epochs: 'abc' is not a whole number.", error.Trim().Split('\n')[0].Split(" Options:")[0]);
        Assert.Single(error.Trim().Split('\n'));
    }

    [Fact]
    public void AMissingAdapterExitsWith2()
    {
        var (exit, _, error) = Run("inspect", "--adapter", "/no/such/adapter");
        Assert.Equal(2, exit);
        Assert.Equal("peft inspect: --adapter: directory '/no/such/adapter' not found.", error.Trim());
    }

    [Fact]
    public void BarePeftAnnouncesTheDefaultJobBeforeStartingIt()
    {
        // The environment points the default job at a model it cannot use, so the run stops right after the announcement.
        var model = TestFiles.Fixture("models", "gpt2-clm");
        var (exit, output, error) = Run(new Dictionary<string, string> { ["Peft__Finetune__Model"] = model });
        Assert.StartsWith("No command given: starting the default job (peft finetune)", output.TrimStart());
        Assert.Contains("Ctrl+C stops it", output);
        Assert.Equal(2, exit);
        Assert.Equal($"peft finetune: {model} has no vocab.txt; finetune tokenizes with a BERT WordPiece vocabulary.", error.Trim());
    }

    [Fact]
    public void VersionIsTheToolsVersion()
    {
        var (exit, output, _) = Run("--version");
        Assert.Equal(0, exit);
        Assert.StartsWith("0.1.0", output.Trim());
    }
}
