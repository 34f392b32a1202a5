using Peft.Tokenizers.Pipeline;

namespace Peft.Tokenizers.Models;

/// <summary><c>WordLevel</c>: each word is one vocabulary entry, or the unknown token.</summary>
internal sealed class WordLevelModel : ITokenModel
{
    private readonly Dictionary<string, int> _vocabulary;
    private readonly string[] _tokens;
    private readonly int? _unknownId;

    public WordLevelModel(Dictionary<string, int> vocabulary, string? unknownToken)
    {
        _vocabulary = vocabulary;
        _tokens = new string[vocabulary.Count == 0 ? 0 : vocabulary.Values.Max() + 1];
        foreach (var (token, id) in vocabulary) _tokens[id] = token;
        if (unknownToken is not null)
        {
            _unknownId = vocabulary.TryGetValue(unknownToken, out var id) ? id
                : throw new InvalidDataException($"WordLevel unk_token '{unknownToken}' is not in the vocabulary.");
        }
    }

    public int VocabularySize => _vocabulary.Count;

    public int? TokenToId(string token) => _vocabulary.TryGetValue(token, out var id) ? id : null;

    public string? IdToToken(int id) => id >= 0 && id < _tokens.Length ? _tokens[id] : null;

    public void Tokenize(string word, List<int> ids)
    {
        if (word.Length == 0) return;
        ids.Add(_vocabulary.TryGetValue(word, out var id) ? id
            : _unknownId ?? throw new InvalidOperationException($"WordLevel: '{word}' is not in the vocabulary and the model has no unk_token."));
    }
}
