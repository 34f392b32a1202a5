using Peft.Pretrained;
using Spectre.Console;

namespace Peft.Cli.Commands;

/// <summary>The default models, converted once from their NuGet packages into the cache: all-MiniLM-L6-v2 (text) and ResNet-18 (images).</summary>
internal static class DefaultModel
{
    /// <summary>The converted MiniLM's directory (converting it on first use), under PEFT_CACHE or ~/.cache/peft-dotnet.</summary>
    public static string Ensure(IAnsiConsole console) =>
        console.Status().Start("Converting all-MiniLM-L6-v2 from ONNX to Hugging Face weights...", _ => MiniLmModel.EnsureConverted(Cache));

    /// <summary>The converted ResNet-18's directory (converting it on first use), in the same cache.</summary>
    public static string EnsureResNet(IAnsiConsole console) =>
        console.Status().Start("Converting ResNet-18 from ONNX to Hugging Face weights...", _ => ResNet18Model.EnsureConverted(Cache));

    private static string Cache =>
        Environment.GetEnvironmentVariable("PEFT_CACHE")
        ?? Path.Combine(Environment.GetEnvironmentVariable("XDG_CACHE_HOME") ?? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache"), "peft-dotnet");
}
