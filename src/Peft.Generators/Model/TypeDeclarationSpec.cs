namespace Peft.Generators.Model;

/// <summary>One type declaration to reopen as <c>partial</c>: the class itself or a type containing it.</summary>
/// <param name="Keyword">The declaration keyword: <c>class</c>, <c>struct</c>, <c>record</c>, <c>record struct</c> or <c>interface</c>.</param>
/// <param name="Name">The name with its type parameters, as declared (<c>Block&lt;T&gt;</c>).</param>
/// <remarks>
/// Pipeline models hold only strings, bools, ints and <see cref="Helpers.EquatableArray{T}"/>: never
/// an ISymbol, SyntaxNode, Location or Compilation, which compare by reference and keep a whole
/// compilation alive, so the generator could never reuse a cached step.
/// </remarks>
internal sealed record TypeDeclarationSpec(string Keyword, string Name);
