namespace Peft.Plugins;

/// <summary>
/// Declares the modules LoRA targets by default for an architecture plugin (the reference's
/// per-model table, e.g. <c>c_attn</c> for GPT-2). The Peft source generator writes the marked
/// <c>partial</c> class's <see cref="IArchitecture.DefaultLoraTargets"/> from it, so the table
/// lives next to the architecture rather than in a hand-kept dictionary.
/// </summary>
/// <example>
/// <code>
/// [DefaultLoraTargets("c_attn")]
/// public sealed partial class Gpt2Architecture : IArchitecture
/// {
///     // ModelType, SupportedTasks, ParseConfig, Build... but no DefaultLoraTargets: it is generated.
/// }
/// </code>
/// </example>
[AttributeUsage(AttributeTargets.Class, Inherited = false, AllowMultiple = false)]
public sealed class DefaultLoraTargetsAttribute : Attribute
{
    /// <summary>Names the modules (Hugging Face names, e.g. <c>"q_proj", "v_proj"</c>) LoRA targets by default.</summary>
    public DefaultLoraTargetsAttribute(params string[] names) => Names = names;

    /// <summary>The module names, in order.</summary>
    public IReadOnlyList<string> Names { get; }
}
