using Peft.Generators.Helpers;

namespace Peft.Generators.Model;

/// <summary>Everything the emitter needs to write one architecture plugin's <c>DefaultLoraTargets</c>.</summary>
/// <param name="HintName">The generated file's name, unique per type.</param>
/// <param name="Namespace">The containing namespace, or empty for the global namespace.</param>
/// <param name="ContainingTypes">Types enclosing the class, outermost first.</param>
/// <param name="Type">The <c>[DefaultLoraTargets]</c> class.</param>
/// <param name="Targets">The module names, in attribute order.</param>
/// <remarks>
/// Pipeline models hold only strings, bools, ints and <see cref="EquatableArray{T}"/>: never an
/// ISymbol, SyntaxNode, Location or Compilation (they break incremental caching).
/// </remarks>
internal sealed record DefaultLoraTargetsSpec(
    string HintName,
    string Namespace,
    EquatableArray<TypeDeclarationSpec> ContainingTypes,
    TypeDeclarationSpec Type,
    EquatableArray<string> Targets);
