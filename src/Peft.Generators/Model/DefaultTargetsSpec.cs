using Peft.Generators.Helpers;

namespace Peft.Generators.Model;

/// <summary>Everything the emitter needs to write one architecture plugin's <c>DefaultTargets</c>.</summary>
/// <param name="HintName">The generated file's name, unique per type.</param>
/// <param name="Namespace">The containing namespace, or empty for the global namespace.</param>
/// <param name="ContainingTypes">Types enclosing the class, outermost first.</param>
/// <param name="Type">The <c>[DefaultTargets]</c> class.</param>
/// <param name="Tables">One table per <c>[DefaultTargets]</c>, in attribute order.</param>
/// <remarks>
/// Pipeline models hold only strings, bools, ints and <see cref="EquatableArray{T}"/>: never an
/// ISymbol, SyntaxNode, Location or Compilation (they break incremental caching).
/// </remarks>
internal sealed record DefaultTargetsSpec(
    string HintName,
    string Namespace,
    EquatableArray<TypeDeclarationSpec> ContainingTypes,
    TypeDeclarationSpec Type,
    EquatableArray<TargetTableSpec> Tables);

/// <summary>One method's default targets.</summary>
/// <param name="Method">The table's key (a <c>peft_type</c>).</param>
/// <param name="Names">The module names, in attribute order.</param>
internal sealed record TargetTableSpec(string Method, EquatableArray<string> Names);
