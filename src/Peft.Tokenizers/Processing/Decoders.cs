using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;
using Peft.Tokenizers.Models;
using Peft.Tokenizers.Pipeline;

namespace Peft.Tokenizers.Processing;

// The decoders of Hugging Face tokenizers (tokenizers/src/decoders): each rewrites the token list.

/// <summary>
/// <c>ByteLevel</c>: each token's alphabet characters back to bytes (a token with a character outside the
/// alphabet, such as an added token with a space, is taken as its own UTF-8), then UTF-8 with U+FFFD for invalid bytes.
/// </summary>
internal sealed class ByteLevelDecoder : IDecoder
{
    public List<string> DecodeChain(List<string> tokens) =>
        [Encoding.UTF8.GetString([.. tokens.SelectMany(t => ByteLevelAlphabet.TryDecode(t) ?? Encoding.UTF8.GetBytes(t))])];
}

/// <summary><c>Metaspace</c>: ▁ back to a space, except in the first token, which drops it unless <c>prepend_scheme</c> is never.</summary>
internal sealed class MetaspaceDecoder(string replacement, bool stripFirst) : IDecoder
{
    public List<string> DecodeChain(List<string> tokens) =>
        tokens.Select((token, i) => token.Replace(replacement, i == 0 && stripFirst ? "" : " ", StringComparison.Ordinal)).ToList();
}

/// <summary><c>WordPiece</c>: pieces with the prefix (##) join the one before, others are separated by a space; optional clean-up.</summary>
internal sealed class WordPieceDecoder(string prefix, bool cleanup) : IDecoder
{
    public List<string> DecodeChain(List<string> tokens) =>
        tokens.Select((token, i) =>
        {
            var text = i == 0 ? token : token.StartsWith(prefix, StringComparison.Ordinal) ? token[prefix.Length..] : " " + token;
            return cleanup ? CleanUp(text) : text;
        }).ToList();

    /// <summary>tokenizers' <c>cleanup</c>: no space before punctuation and English contractions.</summary>
    internal static string CleanUp(string text) => text
        .Replace(" .", ".", StringComparison.Ordinal).Replace(" ?", "?", StringComparison.Ordinal).Replace(" !", "!", StringComparison.Ordinal)
        .Replace(" ,", ",", StringComparison.Ordinal).Replace(" ' ", "'", StringComparison.Ordinal).Replace(" n't", "n't", StringComparison.Ordinal)
        .Replace(" 'm", "'m", StringComparison.Ordinal).Replace(" do not", " don't", StringComparison.Ordinal).Replace(" 's", "'s", StringComparison.Ordinal)
        .Replace(" 've", "'ve", StringComparison.Ordinal).Replace(" 're", "'re", StringComparison.Ordinal);
}

/// <summary><c>BPEDecoder</c>: the end-of-word suffix becomes a space (none after the last token).</summary>
internal sealed class BpeSuffixDecoder(string suffix) : IDecoder
{
    public List<string> DecodeChain(List<string> tokens) =>
        tokens.Select((token, i) => token.Replace(suffix, i == tokens.Count - 1 ? "" : " ", StringComparison.Ordinal)).ToList();
}

/// <summary><c>Replace</c>: a literal string or a regex replaced in every token.</summary>
internal sealed class ReplaceDecoder(Regex pattern, string content) : IDecoder
{
    public List<string> DecodeChain(List<string> tokens) => tokens.Select(t => pattern.Replace(t, content.Replace("$", "$$", StringComparison.Ordinal))).ToList();
}

/// <summary><c>ByteFallback</c>: runs of <c>&lt;0xNN&gt;</c> tokens become the text of their bytes (U+FFFD per byte when not valid UTF-8).</summary>
internal sealed class ByteFallbackDecoder : IDecoder
{
    public List<string> DecodeChain(List<string> tokens)
    {
        var result = new List<string>();
        var pending = new List<byte>();
        foreach (var token in tokens)
        {
            if (token.Length == 6 && token.StartsWith("<0x", StringComparison.Ordinal) && token[5] == '>'
                && byte.TryParse(token.AsSpan(3, 2), NumberStyles.HexNumber, CultureInfo.InvariantCulture, out var b))
            {
                pending.Add(b);
                continue;
            }
            Flush();
            result.Add(token);
        }
        Flush();
        return result;

        void Flush()
        {
            if (pending.Count == 0) return;
            var strict = new UTF8Encoding(false, throwOnInvalidBytes: true);
            try { result.Add(strict.GetString([.. pending])); }
            catch (DecoderFallbackException) { result.AddRange(pending.Select(_ => "\uFFFD")); }
            pending.Clear();
        }
    }
}

/// <summary><c>Fuse</c>: all tokens into one.</summary>
internal sealed class FuseDecoder : IDecoder
{
    public List<string> DecodeChain(List<string> tokens) => [string.Concat(tokens)];
}

/// <summary><c>Strip</c>: removes up to <c>start</c> leading and <c>stop</c> trailing copies of a character from each token.</summary>
internal sealed class StripDecoder(char content, int start, int stop) : IDecoder
{
    public List<string> DecodeChain(List<string> tokens) => tokens.Select(token =>
    {
        var left = 0;
        while (left < start && left < token.Length && token[left] == content) left++;
        var right = 0;
        while (right < stop && right < token.Length - left && token[token.Length - 1 - right] == content) right++;
        return token[left..(token.Length - right)];
    }).ToList();
}

/// <summary><c>Sequence</c> of decoders.</summary>
internal sealed class SequenceDecoder(IReadOnlyList<IDecoder> decoders) : IDecoder
{
    public List<string> DecodeChain(List<string> tokens)
    {
        foreach (var decoder in decoders) tokens = decoder.DecodeChain(tokens);
        return tokens;
    }
}
