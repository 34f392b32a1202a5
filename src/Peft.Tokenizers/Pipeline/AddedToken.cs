namespace Peft.Tokenizers.Pipeline;

/// <summary>One entry of tokenizer.json's <c>added_tokens</c>: matched in the text before the model runs.</summary>
/// <param name="Id">Its id.</param>
/// <param name="Content">Its text.</param>
/// <param name="Special">Special tokens are skipped by <c>Decode(skipSpecialTokens: true)</c>.</param>
/// <param name="Normalized">Matched in the normalized text (else in the raw text).</param>
/// <param name="SingleWord">Matched only when not inside a word.</param>
/// <param name="LeftStrip">Takes the whitespace on its left with it.</param>
/// <param name="RightStrip">Takes the whitespace on its right with it.</param>
public sealed record AddedToken(int Id, string Content, bool Special, bool Normalized, bool SingleWord = false, bool LeftStrip = false, bool RightStrip = false);

/// <summary>
/// Splits text around added tokens as tokenizers' <c>AddedVocabulary</c> does: leftmost-longest matches,
/// <c>single_word</c> checked against the neighbouring characters, <c>lstrip</c>/<c>rstrip</c> taking whitespace.
/// </summary>
internal sealed class AddedTokenMatcher
{
    private readonly Dictionary<string, AddedToken> _byContent;
    private readonly int _longest;

    public AddedTokenMatcher(IEnumerable<(string Content, AddedToken Token)> tokens)
    {
        _byContent = new(StringComparer.Ordinal);
        foreach (var (content, token) in tokens)
        {
            if (content.Length > 0) _byContent[content] = token;
        }
        _longest = _byContent.Count == 0 ? 0 : _byContent.Keys.Max(k => k.Length);
    }

    /// <summary>The parts of <paramref name="piece"/>: text between matches (Token null) and the matched added tokens.</summary>
    public List<(Piece Text, AddedToken? Token)> Split(Piece piece)
    {
        var text = piece.Text;
        var parts = new List<(Piece, AddedToken?)>();
        if (_longest == 0 || text.Length == 0)
        {
            parts.Add((piece, null));
            return parts;
        }
        var textStart = 0;
        for (int i = 0; i < text.Length;)
        {
            var match = LongestAt(text, i);
            if (match is not { } token)
            {
                i++;
                continue;
            }
            int start = i, stop = i + token.Content.Length;
            if (token.SingleWord && (IsWordAt(text, start - 1) || IsWordAt(text, stop)))
            {
                i++;
                continue;
            }
            if (token.LeftStrip) while (start > textStart && char.IsWhiteSpace(text[start - 1])) start--;
            if (token.RightStrip) while (stop < text.Length && char.IsWhiteSpace(text[stop])) stop++;
            if (start > textStart) parts.Add((new Piece(text[textStart..start], piece.AtStart && textStart == 0), null));
            parts.Add((new Piece(token.Content, false), token));
            textStart = i = stop;
        }
        if (textStart < text.Length) parts.Add((new Piece(text[textStart..], piece.AtStart && textStart == 0), null));
        return parts;
    }

    private AddedToken? LongestAt(string text, int index)
    {
        for (int length = Math.Min(_longest, text.Length - index); length > 0; length--)
        {
            if (_byContent.TryGetValue(text.Substring(index, length), out var token)) return token;
        }
        return null;
    }

    private static bool IsWordAt(string text, int index) => index >= 0 && index < text.Length && (char.IsLetterOrDigit(text[index]) || text[index] == '_');
}
