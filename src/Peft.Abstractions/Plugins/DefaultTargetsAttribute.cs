namespace Peft.Plugins;

/// <summary>
/// Declares, on an architecture plugin, the modules one method targets by default when a config
/// names no <c>target_modules</c>: the architecture's entry in the reference's
/// <c>TRANSFORMERS_MODELS_TO_&lt;METHOD&gt;_TARGET_MODULES_MAPPING</c>. One attribute per method; the
/// Peft source generator writes the marked <c>partial</c> class's
/// <see cref="IArchitecture.DefaultTargets"/> from all of them, so each table lives next to the
/// architecture and a new method needs no edit of the architectures that lack an entry for it.
/// </summary>
/// <remarks>
/// <paramref name="method"/> is the table's key: a method's <c>peft_type</c> (<c>"LORA"</c>,
/// <c>"IA3"</c>, <c>"ADALORA"</c>, <c>"LN_TUNING"</c>, ...) or another table a method reads
/// (<c>"IA3_FEEDFORWARD"</c>). Methods whose reference table is a copy of LoRA's read <c>"LORA"</c>
/// when the architecture declares nothing under their own key.
/// </remarks>
/// <example>
/// <code>
/// [DefaultTargets("LORA", "c_attn")]
/// [DefaultTargets("IA3", "c_attn", "mlp.c_proj")]
/// [DefaultTargets("IA3_FEEDFORWARD", "mlp.c_proj")]
/// public sealed partial class Gpt2Architecture : IArchitecture
/// {
///     // ModelType, SupportedTasks, ParseConfig, Build... but no DefaultTargets: it is generated.
/// }
/// </code>
/// </example>
/// <param name="method">The table's key, usually the method's <c>peft_type</c>.</param>
/// <param name="names">The module names (Hugging Face names, e.g. <c>"q_proj", "v_proj"</c>); may be empty.</param>
[AttributeUsage(AttributeTargets.Class, Inherited = false, AllowMultiple = true)]
public sealed class DefaultTargetsAttribute(string method, params string[] names) : Attribute
{
    /// <summary>The table's key.</summary>
    public string Method { get; } = method;

    /// <summary>The module names, in order.</summary>
    public IReadOnlyList<string> Names { get; } = names;
}
