using System.CommandLine;
using System.CommandLine.Parsing;
using System.ComponentModel;
using System.ComponentModel.DataAnnotations;
using System.Globalization;
using System.Reflection;

namespace Peft.Cli.Hosting;

/// <summary>A command line or option value that cannot be used; the message names the option or file and what is allowed.</summary>
public sealed class CommandLineException(string message) : Exception(message);

/// <summary>A parsed command line: the command and its given options as configuration keys.</summary>
/// <param name="Command">The command to run (<see cref="CommandCatalog.DefaultCommand"/> when none was given).</param>
/// <param name="Settings">Only the options given, as keys under <c>Peft:&lt;Command&gt;</c>, so that appsettings.json and the environment fill the rest.</param>
/// <param name="Result">System.CommandLine's result: its <see cref="ParseResult.Action"/> is set for --help and --version.</param>
/// <param name="IsDefaultJob">True for a bare <c>peft</c>: the default job, announced before it starts.</param>
public sealed record ParsedCommandLine(string Command, Dictionary<string, string?> Settings, ParseResult Result, bool IsDefaultJob)
{
    /// <summary>True when the line asks for help or the version instead of running a command.</summary>
    public bool IsHelpOrVersion => Result.Action is not null && Result.Action != Result.CommandResult.Command.Action;
}

/// <summary>
/// <c>peft &lt;command&gt; --option value ...</c> on System.CommandLine: each command has its own
/// --help, the root has --version. Options are made from the options classes
/// (<see cref="CommandCatalog"/>), their values checked against the property's type, and handed on
/// as configuration keys so that appsettings.json and environment variables can give them too.
/// </summary>
public static class CommandLine
{
    /// <summary>The root command with every subcommand and option.</summary>
    public static RootCommand Build()
    {
        var root = new RootCommand("peft: parameter-efficient fine-tuning for .NET (LoRA, prompt tuning, prefix tuning, IA3, ...).\n" +
            "Bare 'peft' runs the default job (peft finetune with its defaults). Options may also come from appsettings.json " +
            "(\"Peft\": { \"Finetune\": { \"Epochs\": 3 } }) or the environment (Peft__Finetune__Epochs=3); the command line wins.");
        // Bare peft is the default job, not a missing command: the root has an action of its own (PeftCli runs it).
        root.SetAction(_ => 0);
        // --version prints this tool's version, whatever assembly started the process (a test host, say).
        foreach (var version in root.Options.OfType<VersionOption>()) version.Action = new PrintVersion();
        foreach (var spec in CommandCatalog.Commands)
        {
            var command = new Command(spec.Name, spec.Description);
            var defaults = Activator.CreateInstance(spec.OptionsType);
            foreach (var property in spec.Options) command.Options.Add(MakeOption(property, property.GetValue(defaults)));
            root.Subcommands.Add(command);
        }
        return root;
    }

    /// <summary>Parses <paramref name="args"/>.</summary>
    /// <exception cref="CommandLineException">An unknown command or option, a missing or unusable value; one line naming it.</exception>
    public static ParsedCommandLine Parse(IReadOnlyList<string> args)
    {
        var root = Build();
        var result = root.Parse(args);
        var command = result.CommandResult.Command;
        if (result.Errors.Count > 0)
        {
            var where = command is RootCommand ? "peft" : $"peft {command.Name}";
            var hint = command is RootCommand
                ? $"Commands: {string.Join(", ", CommandCatalog.Commands.Select(c => c.Name))}."
                : $"Options: {string.Join(", ", command.Options.Where(o => o.Name.StartsWith("--", StringComparison.Ordinal) && o.Name != "--help").Select(o => o.Name))}.";
            throw new CommandLineException($"{where}: {string.Join(" ", result.Errors.Select(e => e.Message).Distinct())} {hint}");
        }
        if (command is RootCommand)
        {
            return new ParsedCommandLine(CommandCatalog.DefaultCommand, new(StringComparer.OrdinalIgnoreCase), result, IsDefaultJob: args.Count == 0);
        }
        var spec = CommandCatalog.Get(command.Name);
        var settings = new Dictionary<string, string?>(StringComparer.OrdinalIgnoreCase);
        foreach (var property in spec.Options)
        {
            var option = command.Options.Single(o => o.Name == CommandCatalog.OptionName(property));
            if (result.GetResult(option) is not { Implicit: false } given) continue;
            var key = $"{spec.Section}:{property.Name}";
            if (property.PropertyType == typeof(string[]))
            {
                var values = given.Tokens.Select(t => t.Value).ToArray();
                for (int i = 0; i < values.Length; i++) settings[$"{key}:{i}"] = values[i];
            }
            else
            {
                settings[key] = given.Tokens.Count > 0 ? given.Tokens[^1].Value : null;
            }
        }
        return new ParsedCommandLine(spec.Name, settings, result, IsDefaultJob: false);
    }

    /// <summary>The informational version of Peft.Cli ("0.1.0+commit").</summary>
    public static string Version =>
        typeof(CommandLine).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion
        ?? typeof(CommandLine).Assembly.GetName().Version?.ToString() ?? "unknown";

    private sealed class PrintVersion : System.CommandLine.Invocation.SynchronousCommandLineAction
    {
        public override int Invoke(ParseResult parseResult)
        {
            parseResult.InvocationConfiguration.Output.WriteLine(Version);
            return 0;
        }
    }

    /// <summary>One option for <paramref name="property"/>, with its type's check and its default in the help.</summary>
    private static Option MakeOption(PropertyInfo property, object? defaultValue)
    {
        var name = CommandCatalog.OptionName(property);
        var description = property.GetCustomAttribute<DescriptionAttribute>()!.Description;
        if (defaultValue is not null and not string { Length: 0 } && property.PropertyType != typeof(string[]))
        {
            description += $" [default: {Show(defaultValue)}]";
        }
        if (property.PropertyType == typeof(string[]))
        {
            return new Option<string[]>(name) { Description = description, HelpName = "text", Arity = ArgumentArity.OneOrMore };
        }
        var (helpName, check) = Checker(property, name);
        return new Option<string>(name)
        {
            Description = description,
            HelpName = helpName,
            CustomParser = argument =>
            {
                var value = argument.Tokens.Count > 0 ? argument.Tokens[^1].Value : "";
                if (check(value) is { } problem) argument.AddError($"{name}: {problem}.");
                return value;
            },
        };
    }

    /// <summary>The help's value name and the check of a value for the property's type (null: fine).</summary>
    private static (string HelpName, Func<string, string?> Check) Checker(PropertyInfo property, string name)
    {
        var type = Nullable.GetUnderlyingType(property.PropertyType) ?? property.PropertyType;
        var invariant = CultureInfo.InvariantCulture;
        if (type == typeof(int))
        {
            return ("int", v => int.TryParse(v, NumberStyles.AllowLeadingSign, invariant, out _) ? null : $"'{v}' is not a whole number");
        }
        if (type == typeof(long))
        {
            return ("int", v => long.TryParse(v, NumberStyles.AllowLeadingSign, invariant, out _) ? null : $"'{v}' is not a whole number");
        }
        if (type == typeof(double))
        {
            return ("number", v => double.TryParse(v, NumberStyles.Float, invariant, out var d) && double.IsFinite(d) ? null : $"'{v}' is not a number");
        }
        if (type == typeof(bool))
        {
            return ("true|false", v => bool.TryParse(v, out _) ? null : $"'{v}' is not true or false");
        }
        if (type.IsEnum)
        {
            var names = Enum.GetNames(type).Select(n => n.ToLowerInvariant()).ToArray();
            return (string.Join('|', names), v => names.Contains(v.ToLowerInvariant()) ? null : $"'{v}' is not one of {string.Join(", ", names)}");
        }
        if (property.GetCustomAttribute<AllowedValuesAttribute>() is { } allowed)
        {
            var values = allowed.Values.Select(v => v?.ToString() ?? "").ToArray();
            return (string.Join('|', values), v => values.Contains(v) ? null : $"'{v}' is not one of {string.Join(", ", values)}");
        }
        var helpName = name is "--model" or "--adapter" or "--output" or "--resume" ? "dir" : name == "--data" ? "file" : "value";
        return (helpName, _ => null);
    }

    private static string Show(object value) => value switch
    {
        Enum e => e.ToString().ToLowerInvariant(),
        double d => d.ToString("G", CultureInfo.InvariantCulture),
        bool b => b ? "true" : "false",
        _ => Convert.ToString(value, CultureInfo.InvariantCulture) ?? "",
    };
}
