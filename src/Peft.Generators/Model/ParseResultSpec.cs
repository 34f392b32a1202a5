using Peft.Generators.Helpers;

namespace Peft.Generators.Model;

/// <summary>What one parse step produced: the spec to emit (null when nothing can be emitted) and the diagnostics.</summary>
/// <typeparam name="TSpec">The spec type.</typeparam>
/// <param name="Spec">The spec, or null.</param>
/// <param name="Diagnostics">The diagnostics, reported by a pipeline of their own.</param>
/// <remarks>
/// Pipeline models hold only strings, bools, ints and <see cref="EquatableArray{T}"/>: never an
/// ISymbol, SyntaxNode, Location or Compilation (they break incremental caching).
/// </remarks>
internal sealed record ParseResultSpec<TSpec>(TSpec? Spec, EquatableArray<DiagnosticSpec> Diagnostics)
    where TSpec : class;
