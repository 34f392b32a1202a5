using System.Buffers.Binary;
using System.Globalization;
using System.Text;
using Peft.Tokenizers.Pipeline;

namespace Peft.Tokenizers.Normalizers;

/// <summary>
/// <c>Precompiled</c>: SentencePiece's compiled normalization rules (T5, mT5, ALBERT, XLNet), a darts-clone
/// double-array trie from UTF-8 keys to offsets into a table of NUL-terminated replacements. As
/// tokenizers' <c>spm_precompiled</c>: each grapheme shorter than 6 bytes is looked up whole, else (or
/// when it has no rule) each of its characters; the first (shortest) key that prefixes the chunk wins.
/// </summary>
internal sealed class PrecompiledNormalizer : INormalizer
{
    private readonly uint[] _trie;
    private readonly byte[] _replacements;

    private PrecompiledNormalizer(uint[] trie, byte[] replacements)
    {
        _trie = trie;
        _replacements = replacements;
    }

    /// <summary>The rules in tokenizer.json's <c>precompiled_charsmap</c> (base64): a 4-byte trie size, the trie, the replacement table.</summary>
    public static PrecompiledNormalizer FromBase64(string charsmap)
    {
        var blob = Convert.FromBase64String(charsmap);
        if (blob.Length < 4) throw new InvalidDataException("Precompiled precompiled_charsmap is shorter than its 4-byte header.");
        var trieBytes = (int)BinaryPrimitives.ReadUInt32LittleEndian(blob);
        if (trieBytes % 4 != 0 || 4 + trieBytes > blob.Length) throw new InvalidDataException($"Precompiled precompiled_charsmap declares a trie of {trieBytes} bytes in a blob of {blob.Length}.");
        var trie = new uint[trieBytes / 4];
        for (int i = 0; i < trie.Length; i++) trie[i] = BinaryPrimitives.ReadUInt32LittleEndian(blob.AsSpan(4 + 4 * i));
        return new PrecompiledNormalizer(trie, blob[(4 + trieBytes)..]);
    }

    public string Normalize(string text)
    {
        var result = new StringBuilder(text.Length);
        var graphemes = StringInfo.GetTextElementEnumerator(text);
        while (graphemes.MoveNext())
        {
            var grapheme = graphemes.GetTextElement();
            if (Encoding.UTF8.GetByteCount(grapheme) < 6 && Transform(grapheme) is { } whole)
            {
                result.Append(whole);
                continue;
            }
            foreach (var rune in grapheme.EnumerateRunes())
            {
                var part = rune.ToString();
                result.Append(Transform(part) ?? part);
            }
        }
        return result.ToString();
    }

    /// <summary>The replacement of the shortest rule whose key prefixes <paramref name="chunk"/>, or null.</summary>
    private string? Transform(string chunk)
    {
        if (_trie.Length == 0) return null;
        var key = Encoding.UTF8.GetBytes(chunk);
        var node = Offset(_trie[0]);
        foreach (var b in key)
        {
            node ^= b;
            if (node >= _trie.Length) return null;
            var unit = _trie[node];
            if (Label(unit) != b) return null;
            node ^= Offset(unit);
            if (!HasLeaf(unit)) continue;
            if (node >= _trie.Length) return null;
            var start = (int)Value(_trie[node]);
            if (start > _replacements.Length) throw new InvalidDataException($"Precompiled rule points at byte {start} of a {_replacements.Length}-byte table.");
            var end = Array.IndexOf(_replacements, (byte)0, start);
            return Encoding.UTF8.GetString(_replacements, start, (end < 0 ? _replacements.Length : end) - start);
        }
        return null;
    }

    // darts-clone's unit layout.
    private static bool HasLeaf(uint unit) => ((unit >> 8) & 1) == 1;

    private static uint Value(uint unit) => unit & ((1u << 31) - 1);

    private static uint Label(uint unit) => unit & ((1u << 31) | 0xFF);

    private static uint Offset(uint unit) => (unit >> 10) << (int)((unit & (1u << 9)) >> 6);
}
