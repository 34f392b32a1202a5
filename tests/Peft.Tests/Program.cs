using Peft.Tests.Reliability;

namespace Peft.Tests;

/// <summary>
/// The test assembly's entry point: run as <c>dotnet exec Peft.Tests.dll save-worker ...</c> it is the
/// child process that <see cref="AtomicSaveTests"/> kills in the middle of saves. Tests never call it.
/// </summary>
internal static class Program
{
    private static int Main(string[] args) => args is ["save-worker", var model, var output]
        ? SaveWorker.Run(model, output)
        : 2;
}
