using Peft.Generators.Helpers;

namespace Peft.Generators.Model;

/// <summary>Everything the emitter needs to write one class's <c>IModuleSlots</c> implementation.</summary>
/// <param name="HintName">The generated file's name, unique per type.</param>
/// <param name="Namespace">The containing namespace, or empty for the global namespace.</param>
/// <param name="ContainingTypes">Types enclosing the class, outermost first.</param>
/// <param name="Type">The <c>[TargetModules]</c> class.</param>
/// <param name="Slots">The slots, in declaration (or attribute) order.</param>
/// <remarks>
/// Pipeline models hold only strings, bools, ints and <see cref="EquatableArray{T}"/>: never an
/// ISymbol, SyntaxNode, Location or Compilation, which compare by reference and keep a whole
/// compilation alive, so the generator could never reuse a cached step.
/// </remarks>
internal sealed record ModuleSlotsSpec(
    string HintName,
    string Namespace,
    EquatableArray<TypeDeclarationSpec> ContainingTypes,
    TypeDeclarationSpec Type,
    EquatableArray<SlotSpec> Slots);
