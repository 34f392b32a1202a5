using System.Diagnostics;

namespace Peft.Cli.Tests;

/// <summary>The real <c>peft</c> process (Peft.Cli.dll under dotnet): exit codes and standard error as a shell sees them.</summary>
public sealed class ProcessTests
{
    private static (int ExitCode, string Output, string Error) Run(params string[] args)
    {
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
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
    public void VersionIsTheToolsVersion()
    {
        var (exit, output, _) = Run("--version");
        Assert.Equal(0, exit);
        Assert.StartsWith("0.1.0", output.Trim());
    }
}
