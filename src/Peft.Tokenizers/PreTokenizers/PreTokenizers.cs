using System.Globalization;
using System.Text.RegularExpressions;
using Peft.Tokenizers.Models;
using Peft.Tokenizers.Pipeline;

namespace Peft.Tokenizers.PreTokenizers;

// The pre-tokenizers of Hugging Face tokenizers (tokenizers/src/pre_tokenizers).

/// <summary>
/// <c>ByteLevel</c>: an optional leading space, GPT-2's word regex (<c>use_regex</c>), then every byte as a
/// character of <see cref="ByteLevelAlphabet"/>.
/// </summary>
internal sealed class ByteLevelPreTokenizer(bool addPrefixSpace, bool useRegex) : IPreTokenizer
{
    /// <summary>GPT-2's pattern (tokenizers' pre_tokenizers/byte_level.rs).</summary>
    public static readonly Regex Gpt2Pattern = new(@"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+", RegexOptions.Compiled);

    public IEnumerable<Piece> Split(Piece piece)
    {
        var text = addPrefixSpace && !piece.Text.StartsWith(' ') ? " " + piece.Text : piece.Text;
        var prefixed = new Piece(text, piece.AtStart);
        var parts = useRegex ? Splitter.Split(prefixed, Splitter.Spans(Gpt2Pattern, text), SplitBehavior.Isolated) : [prefixed];
        return parts.Select(p => p with { Text = ByteLevelAlphabet.Encode(p.Text) });
    }
}

/// <summary><c>Split</c>: around a literal string or a regex, with a delimiter behavior and <c>invert</c>.</summary>
internal sealed class SplitPreTokenizer(Regex pattern, SplitBehavior behavior, bool invert) : IPreTokenizer
{
    public IEnumerable<Piece> Split(Piece piece) => Splitter.Split(piece, Splitter.Spans(pattern, piece.Text, invert), behavior);
}

/// <summary><c>Whitespace</c>: the runs of <c>\w+</c> and of <c>[^\w\s]+</c>.</summary>
internal sealed class WhitespacePreTokenizer : IPreTokenizer
{
    private static readonly Regex Words = new(@"\w+|[^\w\s]+", RegexOptions.Compiled);

    public IEnumerable<Piece> Split(Piece piece) => Splitter.Split(piece, Splitter.Spans(Words, piece.Text, invert: true), SplitBehavior.Removed);
}

/// <summary><c>WhitespaceSplit</c>: split on whitespace, which is dropped.</summary>
internal sealed class WhitespaceSplitPreTokenizer : IPreTokenizer
{
    public IEnumerable<Piece> Split(Piece piece) =>
        Splitter.Split(piece, Splitter.CharSpans(piece.Text, (t, i) => char.IsWhiteSpace(t, i)), SplitBehavior.Removed);
}

/// <summary><c>Punctuation</c>: each punctuation character, with a delimiter behavior (Isolated by default).</summary>
internal sealed class PunctuationPreTokenizer(SplitBehavior behavior) : IPreTokenizer
{
    public IEnumerable<Piece> Split(Piece piece) => Splitter.Split(piece, Splitter.CharSpans(piece.Text, IsPunctuation), behavior);

    /// <summary>ASCII punctuation or a Unicode punctuation category (tokenizers' <c>is_punc</c>).</summary>
    public static bool IsPunctuation(string text, int index)
    {
        var c = text[index];
        if (c < 128) return c is >= '!' and <= '/' or >= ':' and <= '@' or >= '[' and <= '`' or >= '{' and <= '~';
        return CharUnicodeInfo.GetUnicodeCategory(text, index) is UnicodeCategory.ConnectorPunctuation or UnicodeCategory.DashPunctuation
            or UnicodeCategory.OpenPunctuation or UnicodeCategory.ClosePunctuation or UnicodeCategory.InitialQuotePunctuation
            or UnicodeCategory.FinalQuotePunctuation or UnicodeCategory.OtherPunctuation;
    }
}

/// <summary><c>BertPreTokenizer</c>: split on whitespace (dropped), then each punctuation character alone.</summary>
internal sealed class BertPreTokenizer : IPreTokenizer
{
    private readonly WhitespaceSplitPreTokenizer _whitespace = new();
    private readonly PunctuationPreTokenizer _punctuation = new(SplitBehavior.Isolated);

    public IEnumerable<Piece> Split(Piece piece) => _whitespace.Split(piece).SelectMany(_punctuation.Split);
}

/// <summary><c>Digits</c>: digits isolated, one by one (<c>individual_digits</c>) or in runs.</summary>
internal sealed class DigitsPreTokenizer(bool individual) : IPreTokenizer
{
    public IEnumerable<Piece> Split(Piece piece) =>
        Splitter.Split(piece, Splitter.CharSpans(piece.Text, (t, i) => char.IsDigit(t, i)), individual ? SplitBehavior.Isolated : SplitBehavior.Contiguous);
}

/// <summary>
/// <c>Metaspace</c>: spaces become the replacement (▁), which is prepended as <c>prepend_scheme</c> says
/// (always, first: only to the part that begins the text, never), then an optional split before each ▁.
/// </summary>
internal sealed class MetaspacePreTokenizer(string replacement, string prependScheme, bool split) : IPreTokenizer
{
    public IEnumerable<Piece> Split(Piece piece)
    {
        var text = piece.Text.Replace(" ", replacement, StringComparison.Ordinal);
        var prepend = prependScheme switch
        {
            "always" => true,
            "first" => piece.AtStart,
            "never" => false,
            _ => throw new NotSupportedException($"Metaspace prepend_scheme '{prependScheme}' is not one tokenizers knows (always, first, never)."),
        };
        if (prepend && !text.StartsWith(replacement, StringComparison.Ordinal)) text = replacement + text;
        var replaced = new Piece(text, piece.AtStart);
        if (!split) return [replaced];
        var spans = Splitter.Spans(new Regex(Regex.Escape(replacement)), text);
        return Splitter.Split(replaced, spans, SplitBehavior.MergedWithNext);
    }
}

/// <summary><c>Sequence</c>: each pre-tokenizer splits the parts of the one before.</summary>
internal sealed class SequencePreTokenizer(IReadOnlyList<IPreTokenizer> preTokenizers) : IPreTokenizer
{
    public IEnumerable<Piece> Split(Piece piece)
    {
        IEnumerable<Piece> parts = [piece];
        foreach (var preTokenizer in preTokenizers) parts = parts.SelectMany(preTokenizer.Split).ToList();
        return parts;
    }
}
