using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.Text;

namespace Peft.Generators.Model;

/// <summary>A source location as plain data (file path, span and line span), detached from its syntax tree.</summary>
/// <remarks>
/// Pipeline models hold only strings, bools, ints and <see cref="Helpers.EquatableArray{T}"/>: never an
/// ISymbol, SyntaxNode, Location or Compilation (they break incremental caching).
/// </remarks>
internal sealed record LocationSpec(
    string FilePath,
    int Start,
    int Length,
    int StartLine,
    int StartCharacter,
    int EndLine,
    int EndCharacter)
{
    /// <summary>Copies the parts of <paramref name="location"/> a diagnostic needs.</summary>
    public static LocationSpec From(Location? location)
    {
        if (location is null || !location.IsInSource)
        {
            return new LocationSpec(string.Empty, 0, 0, 0, 0, 0, 0);
        }

        var lines = location.GetLineSpan().Span;
        return new LocationSpec(
            location.SourceTree?.FilePath ?? string.Empty,
            location.SourceSpan.Start,
            location.SourceSpan.Length,
            lines.Start.Line,
            lines.Start.Character,
            lines.End.Line,
            lines.End.Character);
    }

    /// <summary>Rebuilds a <see cref="Location"/> for reporting.</summary>
    public Location ToLocation() => FilePath.Length == 0 && Length == 0
        ? Microsoft.CodeAnalysis.Location.None
        : Microsoft.CodeAnalysis.Location.Create(
            FilePath,
            new TextSpan(Start, Length),
            new LinePositionSpan(new LinePosition(StartLine, StartCharacter), new LinePosition(EndLine, EndCharacter)));
}
