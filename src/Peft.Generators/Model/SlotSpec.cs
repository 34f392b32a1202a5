namespace Peft.Generators.Model;

/// <summary>One adapter slot: a replaceable module field and the name TorchSharp registers it under.</summary>
/// <param name="Name">The registered name: the field name, or its <c>[ComponentName(Name = ...)]</c>.</param>
/// <param name="FieldName">The C# field forward() reads.</param>
/// <param name="IsNullable">The field is declared <c>Module&lt;Tensor, Tensor&gt;?</c>.</param>
/// <remarks>
/// Pipeline models hold only strings, bools, ints and <see cref="Helpers.EquatableArray{T}"/>: never
/// an ISymbol, SyntaxNode, Location or Compilation (they break incremental caching).
/// </remarks>
internal sealed record SlotSpec(string Name, string FieldName, bool IsNullable);
