// The peft command: System.CommandLine parses, the Generic Host runs the command (see PeftCli).
using Peft.Cli;

using var cancellation = new CancellationTokenSource();
Console.CancelKeyPress += (_, e) =>
{
    // The first Ctrl+C stops cleanly after the current step (the last checkpoint stays); a second one kills.
    if (cancellation.IsCancellationRequested) return;
    e.Cancel = true;
    Console.Error.WriteLine("peft: stopping after the current step (Ctrl+C again to abort)...");
    cancellation.Cancel();
};
return await PeftCli.RunAsync(args, cancellationToken: cancellation.Token);
