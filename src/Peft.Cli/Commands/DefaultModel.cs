using Peft.Pretrained;
using Spectre.Console;

namespace Peft.Cli.Commands;

/// <summary>The default model: all-MiniLM-L6-v2, converted once from its NuGet package into the cache.</summary>
internal static class DefaultModel
{
    /// <summary>The converted model's directory (converting it on first use), under PEFT_CACHE or ~/.cache/peft-dotnet.</summary>
    public static string Ensure(IAnsiConsole console)
    {
        var cache = Environment.GetEnvironmentVariable("PEFT_CACHE")
            ?? Path.Combine(Environment.GetEnvironmentVariable("XDG_CACHE_HOME") ?? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache"), "peft-dotnet");
        return console.Status().Start("Converting all-MiniLM-L6-v2 from ONNX to Hugging Face weights...", _ => MiniLmModel.EnsureConverted(cache));
    }
}
