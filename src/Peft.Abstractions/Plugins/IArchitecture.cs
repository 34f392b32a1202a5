using System.Text.Json;
using Peft.Modeling;

namespace Peft.Plugins;

/// <summary>
/// An architecture plugin: turns a Hugging Face <c>config.json</c> whose <c>model_type</c> it owns
/// into a TorchSharp module tree with Hugging Face's parameter names.
/// </summary>
/// <remarks>Register one with <c>services.AddPeft().AddBackbone&lt;T&gt;()</c>.</remarks>
public interface IArchitecture
{
    /// <summary>The <c>model_type</c> of config.json this plugin builds (<c>"gpt2"</c>).</summary>
    string ModelType { get; }

    /// <summary>The tasks <see cref="Build"/> accepts.</summary>
    IReadOnlyList<TaskType> SupportedTasks { get; }

    /// <summary>
    /// The modules each method targets when a config names none, by table key (a <c>peft_type</c>
    /// such as <c>"LORA"</c>, or another table a method reads, such as <c>"IA3_FEEDFORWARD"</c>): the
    /// reference's per-model tables, e.g. <c>["LORA"] = ["c_attn"]</c> for GPT-2. Written by the
    /// source generator from the class's <see cref="DefaultTargetsAttribute"/>s; empty for an
    /// architecture that declares none (the reference has no tables for the vision models).
    /// </summary>
    IReadOnlyDictionary<string, IReadOnlyList<string>> DefaultTargets => NoDefaultTargets.Instance;

    /// <summary>Reads this architecture's typed config from a parsed config.json.</summary>
    /// <param name="json">The whole config.json document.</param>
    /// <param name="source">The file it came from, for error messages.</param>
    /// <exception cref="ModelConfigException">A required key is missing or has the wrong type.</exception>
    ModelConfig ParseConfig(JsonElement json, string source);

    /// <summary>Builds a freshly initialised model with the head for <paramref name="task"/>.</summary>
    /// <exception cref="NotSupportedException">The task is not in <see cref="SupportedTasks"/>.</exception>
    PreTrainedModel Build(ModelConfig config, TaskType task);
}

/// <summary>The tables of an architecture that declares no default targets.</summary>
internal static class NoDefaultTargets
{
    /// <summary>An empty, read-only table set.</summary>
    public static readonly IReadOnlyDictionary<string, IReadOnlyList<string>> Instance =
        new System.Collections.ObjectModel.ReadOnlyDictionary<string, IReadOnlyList<string>>(new Dictionary<string, IReadOnlyList<string>>());
}
