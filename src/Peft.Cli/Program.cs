// The peft command: parses the verb and options, builds the Generic Host, runs the command.
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using Peft.Cli.Commands;
using Peft.Cli.Hosting;

string command;
Dictionary<string, string?> settings;
try
{
    (command, settings) = CommandLine.Parse(args);
}
catch (CommandLineException e)
{
    Console.Error.WriteLine($"peft: {e.Message}");
    Console.Error.WriteLine("Run 'peft help' for usage.");
    return 2;
}
if (command == "help")
{
    Console.WriteLine(CommandLine.Usage());
    return 0;
}

using var cancellation = new CancellationTokenSource();
Console.CancelKeyPress += (_, e) =>
{
    // The first Ctrl+C stops cleanly after the current step (the last checkpoint stays); a second one kills.
    if (cancellation.IsCancellationRequested) return;
    e.Cancel = true;
    Console.Error.WriteLine("peft: stopping after the current step (Ctrl+C again to abort)...");
    cancellation.Cancel();
};

using var host = PeftCliHost.Build(command, settings);
try
{
    return await host.Services.GetRequiredKeyedService<ICliCommand>(command).RunAsync(cancellation.Token);
}
catch (OptionsValidationException e)
{
    Console.Error.WriteLine($"peft {command}: {string.Join("; ", e.Failures)}");
    return 2;
}
catch (Exception e) when (e is CommandLineException or Peft.Cli.Data.DataFileException or Peft.Plugins.ModelConfigException
                              or Peft.Checkpoints.CheckpointException or PeftConfigException or FileNotFoundException or DirectoryNotFoundException or InvalidDataException)
{
    Console.Error.WriteLine($"peft {command}: {e.Message}");
    return 1;
}
