using System.ComponentModel;
using System.Reflection;

namespace Peft.Cli.Hosting;

/// <summary>One verb of <c>peft</c>: its name, its one-line help and the options class it binds.</summary>
/// <param name="Name">The verb, as typed.</param>
/// <param name="Description">What it does, for the help.</param>
/// <param name="OptionsType">
/// The class its options bind to (section <c>Peft:&lt;Name&gt;</c>). Each public property with a
/// <see cref="DescriptionAttribute"/> is one option, named after the property in kebab-case: this
/// class is the one place that names, types, defaults and describes the options.
/// </param>
public sealed record CommandSpec(string Name, string Description, Type OptionsType)
{
    /// <summary>The configuration section the options bind to: <c>Peft:Finetune</c> for finetune.</summary>
    public string Section => "Peft:" + CommandCatalog.Pascal(Name);

    /// <summary>The option properties, in declaration order.</summary>
    public IReadOnlyList<PropertyInfo> Options => OptionsType.GetProperties(BindingFlags.Public | BindingFlags.Instance)
        .Where(p => p.CanWrite && p.GetCustomAttribute<DescriptionAttribute>() is not null)
        .OrderBy(p => p.MetadataToken)
        .ToList();
}

/// <summary>The commands of <c>peft</c>.</summary>
public static class CommandCatalog
{
    /// <summary>The command bare <c>peft</c> runs (with its defaults: the default job).</summary>
    public const string DefaultCommand = "finetune";

    /// <summary>Every command, in help order.</summary>
    public static readonly IReadOnlyList<CommandSpec> Commands =
    [
        new("finetune", "Train LoRA (and, for comparison, a linear probe and full fine-tuning) on a classification or prompt/completion set; with no options: all-MiniLM-L6-v2 on Debian's fortunes.", typeof(FinetuneOptions)),
        new("evaluate", "Loss and accuracy of a sequence classifier (plus adapter) on a --data file.", typeof(EvaluateOptions)),
        new("predict", "Classify new text with a trained classifier adapter: the label and its probability per text.", typeof(PredictOptions)),
        new("generate", "Generate with a causal or seq2seq LM (plus adapter) from a prompt.", typeof(GenerateOptions)),
        new("merge", "Fold an adapter into the base weights and write a full model directory.", typeof(MergeOptions)),
        new("serve", "Serve a base model and many adapters over HTTP, OpenAI-compatible (/v1/completions, /v1/chat/completions, /v1/models; /v1/classify for classifier adapters); with no options, the default job's MiniLM classifier.", typeof(ServeOptions)),
        new("inspect", "An adapter's config, tensor keys, shapes and sizes (with --model, the trainable-parameter line).", typeof(InspectOptions)),
    ];

    /// <summary>The command named <paramref name="name"/>.</summary>
    public static CommandSpec Get(string name) => Commands.Single(c => c.Name == name);

    /// <summary>The option of <paramref name="property"/>: <c>MaxNewTokens</c> → <c>--max-new-tokens</c>.</summary>
    public static string OptionName(PropertyInfo property) => "--" + Kebab(property.Name);

    /// <summary><c>max-new-tokens</c> → <c>MaxNewTokens</c>.</summary>
    public static string Pascal(string kebab) =>
        string.Concat(kebab.Split('-').Select(part => char.ToUpperInvariant(part[0]) + part[1..]));

    private static string Kebab(string pascal) =>
        string.Concat(pascal.Select((c, i) => char.IsUpper(c) ? (i > 0 ? "-" : "") + char.ToLowerInvariant(c) : c.ToString()));
}
