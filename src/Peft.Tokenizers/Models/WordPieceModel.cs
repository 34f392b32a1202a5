using Peft.Tokenizers.Pipeline;

namespace Peft.Tokenizers.Models;

/// <summary>
/// <c>WordPiece</c> (tokenizers/src/models/wordpiece): greedy longest match first, pieces after the first
/// carry <c>continuing_subword_prefix</c> (##); a word with a part no piece matches, or longer than
/// <c>max_input_chars_per_word</c> characters, is the unknown token as a whole.
/// </summary>
internal sealed class WordPieceModel : ITokenModel
{
    private readonly Dictionary<string, int> _vocabulary;
    private readonly string[] _tokens;
    private readonly int _unknownId;
    private readonly string _prefix;
    private readonly int _maxCharacters;

    public WordPieceModel(Dictionary<string, int> vocabulary, string unknownToken, string prefix, int maxCharacters)
    {
        _vocabulary = vocabulary;
        _tokens = new string[vocabulary.Count == 0 ? 0 : vocabulary.Values.Max() + 1];
        foreach (var (token, id) in vocabulary) _tokens[id] = token;
        _unknownId = vocabulary.TryGetValue(unknownToken, out var unknown) ? unknown
            : throw new InvalidDataException($"WordPiece unk_token '{unknownToken}' is not in the vocabulary.");
        _prefix = prefix;
        _maxCharacters = maxCharacters;
    }

    public int VocabularySize => _vocabulary.Count;

    public int? TokenToId(string token) => _vocabulary.TryGetValue(token, out var id) ? id : null;

    public string? IdToToken(int id) => id >= 0 && id < _tokens.Length ? _tokens[id] : null;

    public void Tokenize(string word, List<int> ids)
    {
        // tokenizers counts chars (Unicode scalar values), not UTF-16 units.
        if (word.EnumerateRunes().Count() > _maxCharacters)
        {
            ids.Add(_unknownId);
            return;
        }
        var pieces = new List<int>();
        var start = 0;
        while (start < word.Length)
        {
            var end = word.Length;
            int? found = null;
            while (start < end)
            {
                var candidate = word[start..end];
                if (start > 0) candidate = _prefix + candidate;
                if (_vocabulary.TryGetValue(candidate, out var id))
                {
                    found = id;
                    break;
                }
                end -= end >= 2 && char.IsLowSurrogate(word[end - 1]) ? 2 : 1;
            }
            if (found is not { } piece)
            {
                ids.Add(_unknownId);
                return;
            }
            pieces.Add(piece);
            start = end;
        }
        ids.AddRange(pieces);
    }
}
