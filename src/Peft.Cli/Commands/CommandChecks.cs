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

    /// <summary>
    /// <paramref name="task"/>, when <paramref name="modelDirectory"/>'s architecture has a head for it; an error naming
    /// <c>--task</c> and the tasks it has otherwise (instead of the library's exception from deep in the load).
    /// </summary>
    public static TaskType SupportedTask(PeftModels models, string modelDirectory, TaskType task)
    {
        var (architecture, _) = models.ReadConfig(modelDirectory);
        if (architecture.SupportedTasks.Contains(task)) return task;
        throw new CommandLineException(
            $"--task: {architecture.ModelType} has no head for {task.Name}; supported: {string.Join(", ", architecture.SupportedTasks.Select(t => t.Name))}.");
    }
}
