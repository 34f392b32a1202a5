namespace Peft.Cli.Hosting;

/// <summary>A command line that cannot be used; the message says what is wrong and what is allowed.</summary>
public sealed class CommandLineException(string message) : Exception(message);

/// <summary>
/// Splits <c>peft &lt;command&gt; --option value ...</c> into the command and configuration keys,
/// so that options can come from appsettings.json (section <c>Peft:&lt;Command&gt;</c>) and be
/// overridden on the command line.
/// </summary>
public static class CommandLine
{
    /// <summary>The commands and the options each accepts (as <c>--kebab-case</c>).</summary>
    public static readonly IReadOnlyDictionary<string, IReadOnlyList<string>> Commands = new Dictionary<string, IReadOnlyList<string>>
    {
        ["finetune"] = ["model", "data", "task", "methods", "rank", "alpha", "dropout", "target-modules", "epochs", "batch-size", "learning-rate",
                        "probe-learning-rate", "full-learning-rate", "warmup-ratio", "gradient-accumulation", "max-grad-norm", "max-length",
                        "test-fraction", "seed", "output", "resume", "on-bad-line", "categories", "max-examples-per-label"],
        ["evaluate"] = ["model", "adapter", "data", "batch-size", "max-length", "on-bad-line", "labels"],
        ["generate"] = ["model", "adapter", "prompt", "max-new-tokens"],
        ["merge"] = ["model", "adapter", "output", "task"],
        ["inspect"] = ["adapter", "model", "task"],
    };

    /// <summary>The command (finetune when none is given) and its options as configuration keys under <c>Peft:&lt;Command&gt;</c>.</summary>
    /// <exception cref="CommandLineException">Unknown command or option, or an option without a value.</exception>
    public static (string Command, Dictionary<string, string?> Settings) Parse(IReadOnlyList<string> args)
    {
        var command = args.Count > 0 && !args[0].StartsWith('-') ? args[0] : "finetune";
        var rest = args.Count > 0 && !args[0].StartsWith('-') ? args.Skip(1).ToList() : args.ToList();
        if (command is "help" or "--help" or "-h") return ("help", []);
        if (!Commands.TryGetValue(command, out var known))
        {
            throw new CommandLineException($"Unknown command '{command}'. Commands: {string.Join(", ", Commands.Keys)}.");
        }
        var settings = new Dictionary<string, string?>(StringComparer.OrdinalIgnoreCase);
        var section = "Peft:" + char.ToUpperInvariant(command[0]) + command[1..];
        for (int i = 0; i < rest.Count; i++)
        {
            var token = rest[i];
            if (token is "--help" or "-h") return ("help", []);
            if (!token.StartsWith("--", StringComparison.Ordinal))
            {
                throw new CommandLineException($"Unexpected argument '{token}'; options take the form --name value.");
            }
            var name = token[2..];
            string? value = null;
            var equals = name.IndexOf('=');
            if (equals >= 0)
            {
                value = name[(equals + 1)..];
                name = name[..equals];
            }
            if (!known.Contains(name))
            {
                throw new CommandLineException($"Unknown option --{name} for '{command}'. Options: {string.Join(", ", known.Select(k => "--" + k))}.");
            }
            if (value is null)
            {
                if (i + 1 >= rest.Count || rest[i + 1].StartsWith("--", StringComparison.Ordinal))
                {
                    throw new CommandLineException($"Option --{name} needs a value.");
                }
                value = rest[++i];
            }
            settings[$"{section}:{ToPascal(name)}"] = value;
        }
        return (command, settings);
    }

    /// <summary>The usage text.</summary>
    public static string Usage() =>
        """
        peft — parameter-efficient fine-tuning for .NET

        usage: peft [command] [--option value ...]

          finetune   train LoRA (and, for comparison, a linear probe and full fine-tuning) on a text
                     classification set; with no options: all-MiniLM-L6-v2 on Debian's fortunes
          evaluate   accuracy of a model (plus adapter) on a --data file
          generate   greedy generation with a causal LM (plus adapter) from --prompt token ids
          merge      fold an adapter into the base weights and write a full model directory
          inspect    an adapter's config, tensor keys, sizes and trainable-parameter line

        Options may also come from appsettings.json under "Peft": { "<Command>": { ... } }.
        Run 'peft <command> --help' to list a command's options.
        """;

    /// <summary>The options of one command, for its help.</summary>
    public static string Usage(string command) =>
        $"peft {command} " + string.Join(" ", Commands[command].Select(o => $"[--{o} value]"));

    private static string ToPascal(string kebab) =>
        string.Concat(kebab.Split('-').Select(part => char.ToUpperInvariant(part[0]) + part[1..]));
}
