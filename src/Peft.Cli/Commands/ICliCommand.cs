namespace Peft.Cli.Commands;

/// <summary>One verb of the <c>peft</c> command.</summary>
public interface ICliCommand
{
    /// <summary>Runs the command; returns the process exit code.</summary>
    Task<int> RunAsync(CancellationToken cancellationToken);
}
