namespace Peft;

/// <summary>
/// Marks a TorchSharp module class whose child modules adapters may replace. The Peft source
/// generator writes, for each marked <c>partial</c> class, an implementation of
/// <see cref="IModuleSlots"/>: the list of slots and a replace-by-name that updates both the field
/// that <c>forward()</c> reads and TorchSharp's submodule registration, with no reflection.
/// </summary>
/// <remarks>
/// Slot fields must be non-readonly instance fields typed <c>Module&lt;Tensor, Tensor&gt;</c>, so
/// an adapter layer can take their place. With no names given, every such field is a slot. A slot's
/// name is the one TorchSharp registers the field under: its <c>[ComponentName(Name = ...)]</c> if
/// it has one, else the field name. Mistakes are compile errors PEFT0001-PEFT0006 (docs/GENERATOR.md).
/// </remarks>
[AttributeUsage(AttributeTargets.Class, Inherited = false, AllowMultiple = false)]
public sealed class TargetModulesAttribute : Attribute
{
    /// <summary>Marks the class, naming its slot fields (empty: every replaceable field).</summary>
    public TargetModulesAttribute(params string[] names) => Names = names;

    /// <summary>The slot names (registered names, equal to the Hugging Face module names).</summary>
    public IReadOnlyList<string> Names { get; }
}
