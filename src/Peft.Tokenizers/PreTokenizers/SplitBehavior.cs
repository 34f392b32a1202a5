using System.Text.RegularExpressions;
using Peft.Tokenizers.Pipeline;

namespace Peft.Tokenizers.PreTokenizers;

/// <summary>What becomes of the delimiters a split finds (tokenizers' <c>SplitDelimiterBehavior</c>).</summary>
internal enum SplitBehavior
{
    Removed,
    Isolated,
    MergedWithPrevious,
    MergedWithNext,
    Contiguous,
}

/// <summary>Splitting a piece around the matches of a pattern, as <c>NormalizedString::split</c> does.</summary>
internal static class Splitter
{
    public static SplitBehavior ParseBehavior(string name) => name switch
    {
        "Removed" => SplitBehavior.Removed,
        "Isolated" => SplitBehavior.Isolated,
        "MergedWithPrevious" => SplitBehavior.MergedWithPrevious,
        "MergedWithNext" => SplitBehavior.MergedWithNext,
        "Contiguous" => SplitBehavior.Contiguous,
        _ => throw new NotSupportedException($"split behavior '{name}' is not one tokenizers knows (Removed, Isolated, MergedWithPrevious, MergedWithNext, Contiguous)."),
    };

    /// <summary>The parts of <paramref name="piece"/> given its spans, each marked delimiter or not.</summary>
    public static IEnumerable<Piece> Split(Piece piece, IReadOnlyList<(int Start, int Length, bool IsDelimiter)> spans, SplitBehavior behavior)
    {
        var parts = new List<(int Start, int Length)>();
        var text = piece.Text;
        switch (behavior)
        {
            case SplitBehavior.Removed:
                parts.AddRange(spans.Where(s => !s.IsDelimiter).Select(s => (s.Start, s.Length)));
                break;
            case SplitBehavior.Isolated:
                parts.AddRange(spans.Select(s => (s.Start, s.Length)));
                break;
            case SplitBehavior.Contiguous:
                var previous = false;
                foreach (var span in spans)
                {
                    if (span.IsDelimiter == previous && parts.Count > 0) parts[^1] = (parts[^1].Start, parts[^1].Length + span.Length);
                    else parts.Add((span.Start, span.Length));
                    previous = span.IsDelimiter;
                }
                break;
            case SplitBehavior.MergedWithPrevious:
                var previousWasDelimiter = false;
                foreach (var span in spans)
                {
                    if (span.IsDelimiter && parts.Count > 0 && !previousWasDelimiter) parts[^1] = (parts[^1].Start, parts[^1].Length + span.Length);
                    else parts.Add((span.Start, span.Length));
                    previousWasDelimiter = span.IsDelimiter;
                }
                break;
            case SplitBehavior.MergedWithNext:
                var pending = -1;
                foreach (var span in spans)
                {
                    if (pending >= 0 && !span.IsDelimiter)
                    {
                        parts[^1] = (parts[^1].Start, parts[^1].Length + span.Length);
                        pending = -1;
                        continue;
                    }
                    parts.Add((span.Start, span.Length));
                    pending = span.IsDelimiter ? parts.Count - 1 : -1;
                }
                break;
        }
        foreach (var (start, length) in parts)
        {
            if (length > 0) yield return new Piece(text.Substring(start, length), piece.AtStart && start == 0);
        }
    }

    /// <summary>The spans of <paramref name="text"/>: the regex's matches as delimiters, the text between as not (or the reverse with <paramref name="invert"/>).</summary>
    public static List<(int Start, int Length, bool IsDelimiter)> Spans(Regex pattern, string text, bool invert = false)
    {
        var spans = new List<(int, int, bool)>();
        var position = 0;
        foreach (Match match in pattern.Matches(text))
        {
            if (match.Length == 0) continue;
            if (match.Index > position) spans.Add((position, match.Index - position, invert));
            spans.Add((match.Index, match.Length, !invert));
            position = match.Index + match.Length;
        }
        if (position < text.Length) spans.Add((position, text.Length - position, invert));
        return spans;
    }

    /// <summary>Spans from a per-character predicate: each matching character is its own delimiter.</summary>
    public static List<(int Start, int Length, bool IsDelimiter)> CharSpans(string text, Func<string, int, bool> isDelimiter)
    {
        var spans = new List<(int, int, bool)>();
        var start = 0;
        for (int i = 0; i < text.Length; i += char.IsSurrogatePair(text, i) ? 2 : 1)
        {
            var width = char.IsSurrogatePair(text, i) ? 2 : 1;
            if (!isDelimiter(text, i)) continue;
            if (i > start) spans.Add((start, i - start, false));
            spans.Add((i, width, true));
            start = i + width;
        }
        if (start < text.Length) spans.Add((start, text.Length - start, false));
        return spans;
    }
}
