using Peft.Cli.Hosting;

namespace Peft.Cli.Commands;

/// <summary>Checks of option values shared by the commands; each failure names the option.</summary>
internal static class CommandChecks
{
    /// <summary>The directory given to <paramref name="option"/>; an error when it is missing or absent.</summary>
    public static string ExistingDirectory(string? value, string option)
    {
        if (string.IsNullOrEmpty(value)) throw new CommandLineException($"{option} <directory> is required.");
        if (!Directory.Exists(value)) throw new CommandLineException($"{option}: directory '{value}' not found.");
        return value;
    }

    /// <summary>The file given to <paramref name="option"/>; an error when it is missing or absent.</summary>
    public static string ExistingFile(string? value, string option)
    {
        if (string.IsNullOrEmpty(value)) throw new CommandLineException($"{option} <file> is required.");
        if (!File.Exists(value)) throw new CommandLineException($"{option}: file '{value}' not found.");
        return value;
    }
}
