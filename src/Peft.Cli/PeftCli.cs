using Peft.Modeling;
using System.CommandLine;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Peft.Cli.Commands;
using Peft.Cli.Data;
using Peft.Cli.Hosting;
using Spectre.Console;

namespace Peft.Cli;

/// <summary>
/// The <c>peft</c> command from arguments to exit code: 0 done, 2 a user error (one line on the
/// error writer naming the option or file, no stack trace), 130 cancelled. Program.cs calls it
/// with the process's console; tests call it with a test console.
/// </summary>
public static class PeftCli
{
    /// <summary>Exit code of a usage error: a bad option, value or file.</summary>
    public const int UsageError = 2;

    /// <summary>Runs <c>peft</c> with <paramref name="args"/>.</summary>
    /// <param name="args">The command line.</param>
    /// <param name="console">Where commands write (tables, progress, log lines); null: the process's console.</param>
    /// <param name="output">Where --help and --version go; null: standard output.</param>
    /// <param name="error">Where user errors go; null: standard error.</param>
    /// <param name="cancellationToken">Stops a running command after its current step.</param>
    public static async Task<int> RunAsync(IReadOnlyList<string> args, IAnsiConsole? console = null, TextWriter? output = null, TextWriter? error = null,
        CancellationToken cancellationToken = default)
    {
        error ??= Console.Error;
        ParsedCommandLine parsed;
        try
        {
            parsed = CommandLine.Parse(args);
        }
        catch (CommandLineException e)
        {
            error.WriteLine(e.Message);
            return UsageError;
        }
        if (parsed.IsHelpOrVersion)
        {
            return parsed.Result.Invoke(new InvocationConfiguration { Output = output ?? Console.Out, Error = error });
        }
        if (parsed.IsDefaultJob)
        {
            (console ?? AnsiConsole.Console).MarkupLine(
                "[bold]No command given: starting the default job[/] (peft finetune): all-MiniLM-L6-v2 classifies Debian's fortunes by topic, " +
                $"trained with LoRA, a linear probe and full fine-tuning, 3 epochs each; about {Math.Max(3, 20 / Math.Max(1, Environment.ProcessorCount))} minutes on " +
                $"{Environment.ProcessorCount} cores. Ctrl+C stops it; 'peft --help' lists the commands.");
        }

        var where = $"peft {parsed.Command}";
        try
        {
            using var host = PeftCliHost.Build(parsed.Command, parsed.Settings, console);
            // Scoped, not only global: two runs in one process (tests, an app hosting the CLI) each keep the library's warnings on their own console.
            using var warnings = PeftLog.Use(host.Services.GetRequiredService<ILoggerFactory>().CreateLogger("Peft"));
            return await host.Services.GetRequiredKeyedService<ICliCommand>(parsed.Command).RunAsync(cancellationToken);
        }
        catch (OptionsValidationException e)
        {
            error.WriteLine($"{where}: {string.Join("; ", e.Failures)}.");
            return UsageError;
        }
        catch (InvalidOperationException e) when (e.Message.StartsWith("Failed to convert configuration value", StringComparison.Ordinal))
        {
            // A value from appsettings.json or the environment that the option's type cannot take.
            error.WriteLine($"{where}: {e.Message}");
            return UsageError;
        }
        catch (Exception e) when (IsUserError(e))
        {
            error.WriteLine($"{where}: {e.Message}");
            return UsageError;
        }
    }

    /// <summary>Errors a user causes and can fix (a bad value, a missing or malformed file), as opposed to bugs.</summary>
    private static bool IsUserError(Exception e) =>
        e is CommandLineException or DataFileException or ModelConfigException or Checkpoints.CheckpointException
            or PeftConfigException or Training.NonFiniteTrainingException or Tuners.NonFiniteMergeException or FileNotFoundException or DirectoryNotFoundException or InvalidDataException;
}
