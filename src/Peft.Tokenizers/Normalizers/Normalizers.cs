using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;
using Peft.Tokenizers.Pipeline;

namespace Peft.Tokenizers.Normalizers;

// The normalizers of Hugging Face tokenizers (tokenizers/src/normalizers), as string rewrites: ids need no offsets.

/// <summary>Unicode normalization forms: NFC, NFD, NFKC, NFKD.</summary>
internal sealed class UnicodeNormalizer(NormalizationForm form) : INormalizer
{
    public string Normalize(string text) => text.Normalize(form);
}

/// <summary><c>Lowercase</c>: Unicode lower-casing, culture-invariant (Rust's <c>char::to_lowercase</c>).</summary>
internal sealed class LowercaseNormalizer : INormalizer
{
    public string Normalize(string text) => text.ToLowerInvariant();
}

/// <summary><c>StripAccents</c>: drops combining marks (category Mn); meant to follow NFD or NFKD.</summary>
internal sealed class StripAccentsNormalizer : INormalizer
{
    public string Normalize(string text) => StripMarks(text);

    public static string StripMarks(string text)
    {
        var kept = new StringBuilder(text.Length);
        foreach (var c in text)
        {
            if (CharUnicodeInfo.GetUnicodeCategory(c) != UnicodeCategory.NonSpacingMark) kept.Append(c);
        }
        return kept.ToString();
    }
}

/// <summary><c>Prepend</c>: puts a string before any non-empty text (Llama-2's "▁").</summary>
internal sealed class PrependNormalizer(string prefix) : INormalizer
{
    public string Normalize(string text) => text.Length == 0 ? text : prefix + text;
}

/// <summary><c>Replace</c>: every match of a literal string or a regex becomes <c>content</c>.</summary>
internal sealed class ReplaceNormalizer(Regex pattern, string content) : INormalizer
{
    public string Normalize(string text) => pattern.Replace(text, content.Replace("$", "$$", StringComparison.Ordinal));
}

/// <summary><c>Strip</c>: trims whitespace on the left and/or the right.</summary>
internal sealed class StripNormalizer(bool left, bool right) : INormalizer
{
    public string Normalize(string text) => left && right ? text.Trim() : left ? text.TrimStart() : right ? text.TrimEnd() : text;
}

/// <summary><c>Sequence</c>: each normalizer in turn.</summary>
internal sealed class SequenceNormalizer(IReadOnlyList<INormalizer> normalizers) : INormalizer
{
    public string Normalize(string text)
    {
        foreach (var normalizer in normalizers) text = normalizer.Normalize(text);
        return text;
    }
}

/// <summary>
/// <c>BertNormalizer</c>: control characters dropped and whitespace made a space (<c>clean_text</c>), spaces
/// around CJK ideographs (<c>handle_chinese_chars</c>), accents stripped (<c>strip_accents</c>, which
/// follows <c>lowercase</c> when null) and lower-casing.
/// </summary>
internal sealed class BertNormalizer(bool cleanText, bool handleChineseChars, bool? stripAccents, bool lowercase) : INormalizer
{
    public string Normalize(string text)
    {
        var result = new StringBuilder(text.Length);
        foreach (var rune in text.EnumerateRunes())
        {
            if (cleanText)
            {
                if (rune.Value == 0 || rune.Value == 0xFFFD || IsControl(rune)) continue;
                if (IsWhitespace(rune)) { result.Append(' '); continue; }
            }
            if (handleChineseChars && IsChinese(rune.Value)) result.Append(' ').Append(rune.ToString()).Append(' ');
            else result.Append(rune.ToString());
        }
        var normalized = result.ToString();
        if (stripAccents ?? lowercase) normalized = StripAccentsNormalizer.StripMarks(normalized.Normalize(NormalizationForm.FormD));
        return lowercase ? normalized.ToLowerInvariant() : normalized;
    }

    internal static bool IsWhitespace(Rune rune) => Rune.IsWhiteSpace(rune);

    private static bool IsControl(Rune rune) =>
        rune.Value is not ('\t' or '\n' or '\r')
        && Rune.GetUnicodeCategory(rune) is UnicodeCategory.Control or UnicodeCategory.Format or UnicodeCategory.PrivateUse or UnicodeCategory.Surrogate or UnicodeCategory.OtherNotAssigned;

    private static bool IsChinese(int c) =>
        c is >= 0x4E00 and <= 0x9FFF or >= 0x3400 and <= 0x4DBF or >= 0x20000 and <= 0x2A6DF or >= 0x2A700 and <= 0x2B73F
            or >= 0x2B740 and <= 0x2B81F or >= 0x2B920 and <= 0x2CEAF or >= 0xF900 and <= 0xFAFF or >= 0x2F800 and <= 0x2FA1F;
}
