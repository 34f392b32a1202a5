using System.Text;
using Peft.Tokenizers.Pipeline;

namespace Peft.Tokenizers.Models;

/// <summary>
/// <c>BPE</c> (tokenizers/src/models/bpe): a word starts as its characters (those outside the vocabulary
/// become <c>&lt;0xNN&gt;</c> byte tokens with <c>byte_fallback</c>, else the unknown token, fused when
/// <c>fuse_unk</c>), then the adjacent pair of lowest merge rank is merged, leftmost first, until none
/// has a rank. <c>ignore_merges</c> (Llama-3) takes a word that is itself in the vocabulary as one token.
/// </summary>
internal sealed class BpeModel : ITokenModel
{
    private readonly Dictionary<string, int> _vocabulary;
    private readonly string[] _tokens;
    private readonly Dictionary<(int, int), (int Rank, int Merged)> _merges = [];
    private readonly int? _unknownId;
    private readonly string? _prefix;
    private readonly string? _suffix;
    private readonly bool _fuseUnknown;
    private readonly bool _byteFallback;
    private readonly bool _ignoreMerges;

    public BpeModel(Dictionary<string, int> vocabulary, IReadOnlyList<(string Left, string Right)> merges, string? unknownToken,
        string? continuingSubwordPrefix, string? endOfWordSuffix, bool fuseUnknown, bool byteFallback, bool ignoreMerges)
    {
        _vocabulary = vocabulary;
        _tokens = new string[vocabulary.Count == 0 ? 0 : vocabulary.Values.Max() + 1];
        foreach (var (token, id) in vocabulary) _tokens[id] = token;
        _prefix = continuingSubwordPrefix;
        _suffix = endOfWordSuffix;
        _fuseUnknown = fuseUnknown;
        _byteFallback = byteFallback;
        _ignoreMerges = ignoreMerges;
        if (unknownToken is not null)
        {
            _unknownId = vocabulary.TryGetValue(unknownToken, out var id) ? id
                : throw new InvalidDataException($"BPE unk_token '{unknownToken}' is not in the vocabulary.");
        }
        var prefixLength = _prefix?.Length ?? 0;
        for (int rank = 0; rank < merges.Count; rank++)
        {
            var (left, right) = merges[rank];
            if (!vocabulary.TryGetValue(left, out var a) || !vocabulary.TryGetValue(right, out var b))
                throw new InvalidDataException($"BPE merge {rank} ('{left} {right}') names a token that is not in the vocabulary.");
            // The merged token drops the right side's continuing-subword prefix (tokenizers' BPE builder does the same).
            var merged = left + (prefixLength > 0 && right.StartsWith(_prefix!, StringComparison.Ordinal) ? right[prefixLength..] : right);
            if (!vocabulary.TryGetValue(merged, out var id))
                throw new InvalidDataException($"BPE merge {rank} ('{left} {right}') makes '{merged}', which is not in the vocabulary.");
            _merges[(a, b)] = (rank, id); // a repeated pair keeps its last rank, as tokenizers' map does
        }
    }

    public int VocabularySize => _vocabulary.Count;

    public int? TokenToId(string token) => _vocabulary.TryGetValue(token, out var id) ? id : null;

    public string? IdToToken(int id) => id >= 0 && id < _tokens.Length ? _tokens[id] : null;

    public void Tokenize(string word, List<int> ids)
    {
        if (word.Length == 0) return;
        if (_ignoreMerges && _vocabulary.TryGetValue(word, out var whole))
        {
            ids.Add(whole);
            return;
        }
        var symbols = InitialSymbols(word);
        while (true)
        {
            int best = -1, bestRank = int.MaxValue, bestMerged = 0;
            for (int i = 0; i + 1 < symbols.Count; i++)
            {
                if (_merges.TryGetValue((symbols[i], symbols[i + 1]), out var merge) && merge.Rank < bestRank)
                {
                    (best, bestRank, bestMerged) = (i, merge.Rank, merge.Merged);
                }
            }
            if (best < 0) break;
            symbols[best] = bestMerged;
            symbols.RemoveAt(best + 1);
        }
        ids.AddRange(symbols);
    }

    private List<int> InitialSymbols(string word)
    {
        var symbols = new List<int>(word.Length);
        var previousUnknown = false;
        var runes = word.EnumerateRunes().ToList();
        for (int i = 0; i < runes.Count; i++)
        {
            var piece = runes[i].ToString();
            if (i > 0 && _prefix is not null) piece = _prefix + piece;
            if (i == runes.Count - 1 && _suffix is not null) piece += _suffix;
            if (_vocabulary.TryGetValue(piece, out var id))
            {
                symbols.Add(id);
                previousUnknown = false;
                continue;
            }
            if (_byteFallback && ByteTokens(piece) is { } bytes)
            {
                symbols.AddRange(bytes);
                previousUnknown = false;
                continue;
            }
            // Without an unk_token tokenizers drops the character; so does this, to give the same ids.
            if (_unknownId is not { } unknown) continue;
            if (!(_fuseUnknown && previousUnknown)) symbols.Add(unknown);
            previousUnknown = true;
        }
        return symbols;
    }

    /// <summary>The <c>&lt;0xNN&gt;</c> tokens of a symbol's UTF-8 bytes, or null when one is missing.</summary>
    private List<int>? ByteTokens(string symbol)
    {
        var utf8 = Encoding.UTF8.GetBytes(symbol);
        var ids = new List<int>(utf8.Length);
        foreach (var b in utf8)
        {
            if (!_vocabulary.TryGetValue($"<0x{b:X2}>", out var id)) return null;
            ids.Add(id);
        }
        return ids;
    }
}
