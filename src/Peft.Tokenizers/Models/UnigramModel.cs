using System.Text;
using Peft.Tokenizers.Pipeline;

namespace Peft.Tokenizers.Models;

/// <summary>
/// <c>Unigram</c> (tokenizers/src/models/unigram, SentencePiece's unigram LM, as T5 and mT5 use): the
/// segmentation of highest total log-probability by Viterbi. A character no piece covers becomes the
/// unknown piece with score <c>min_score − 10</c>; consecutive unknowns fuse into one; with
/// <c>byte_fallback</c> an unknown piece becomes its <c>&lt;0xNN&gt;</c> byte pieces when they exist.
/// Ties keep the first candidate found (shorter pieces from earlier starts), as tokenizers does.
/// </summary>
internal sealed class UnigramModel : ITokenModel
{
    private const double UnknownPenalty = 10.0;
    private readonly Dictionary<string, int> _vocabulary = new(StringComparer.Ordinal);
    private readonly (string Piece, double Score)[] _pieces;
    private readonly int? _unknownId;
    private readonly bool _byteFallback;
    private readonly double _unknownScore;
    private readonly int _longestPiece;

    public UnigramModel(IReadOnlyList<(string Piece, double Score)> pieces, int? unknownId, bool byteFallback)
    {
        _pieces = [.. pieces];
        for (int id = 0; id < pieces.Count; id++) _vocabulary[pieces[id].Piece] = id; // a repeated piece keeps its last id, as tokenizers does
        if (unknownId is { } unk && (unk < 0 || unk >= pieces.Count)) throw new InvalidDataException($"Unigram unk_id {unk} is outside the vocabulary of {pieces.Count}.");
        _unknownId = unknownId;
        _byteFallback = byteFallback;
        _unknownScore = (pieces.Count == 0 ? 0 : pieces.Min(p => p.Score)) - UnknownPenalty;
        _longestPiece = pieces.Count == 0 ? 0 : pieces.Max(p => p.Piece.Length);
    }

    public int VocabularySize => _pieces.Length;

    public int? TokenToId(string token) => _vocabulary.TryGetValue(token, out var id) ? id : null;

    public string? IdToToken(int id) => id >= 0 && id < _pieces.Length ? _pieces[id].Piece : null;

    public void Tokenize(string word, List<int> ids)
    {
        foreach (var piece in Segment(word))
        {
            if (_vocabulary.TryGetValue(piece, out var id))
            {
                ids.Add(id);
                continue;
            }
            if (_byteFallback && ByteIds(piece) is { } bytes)
            {
                ids.AddRange(bytes);
                continue;
            }
            ids.Add(_unknownId ?? throw new InvalidOperationException($"Unigram: '{piece}' has no piece and the model has no unk_id."));
        }
    }

    /// <summary>The best segmentation; unknown spans fused into one string each.</summary>
    private List<string> Segment(string text)
    {
        var n = text.Length;
        var score = new double[n + 1];
        var from = new int[n + 1];
        var id = new int[n + 1];
        Array.Fill(from, -1);
        from[0] = 0;
        for (int start = 0; start < n; start += CharWidth(text, start))
        {
            if (from[start] < 0) continue;
            var width = CharWidth(text, start);
            var coversChar = false;
            for (int length = 1; length <= Math.Min(_longestPiece, n - start); length++)
            {
                if (!_vocabulary.TryGetValue(text.Substring(start, length), out var piece)) continue;
                var candidate = score[start] + _pieces[piece].Score;
                var end = start + length;
                if (from[end] < 0 || candidate > score[end]) (score[end], from[end], id[end]) = (candidate, start, piece);
                if (length == width) coversChar = true;
            }
            if (!coversChar)
            {
                var end = start + width;
                var candidate = score[start] + _unknownScore;
                if (from[end] < 0 || candidate > score[end]) (score[end], from[end], id[end]) = (candidate, start, -1);
            }
        }
        var pieces = new List<string>();
        var unknown = new StringBuilder();
        for (int end = n; end > 0; end = from[end])
        {
            var piece = text[from[end]..end];
            if (IsUnknown(id[end]))
            {
                unknown.Insert(0, piece);
                continue;
            }
            if (unknown.Length > 0) { pieces.Add(unknown.ToString()); unknown.Clear(); }
            pieces.Add(piece);
        }
        if (unknown.Length > 0) pieces.Add(unknown.ToString());
        pieces.Reverse();
        return pieces;
    }

    private bool IsUnknown(int piece) => piece < 0 || piece == _unknownId;

    private static int CharWidth(string text, int index) => char.IsSurrogatePair(text, index) ? 2 : 1;

    private List<int>? ByteIds(string piece)
    {
        var ids = new List<int>();
        foreach (var b in Encoding.UTF8.GetBytes(piece))
        {
            if (!_vocabulary.TryGetValue($"<0x{b:X2}>", out var byteId)) return null;
            ids.Add(byteId);
        }
        return ids;
    }
}
