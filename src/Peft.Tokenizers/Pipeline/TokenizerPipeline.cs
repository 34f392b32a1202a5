namespace Peft.Tokenizers.Pipeline;

/// <summary>
/// The encoding pipeline of Hugging Face tokenizers for one sequence: added tokens split out of the raw
/// text (those not <c>normalized</c>), the normalizer on each remaining part, normalized added tokens,
/// the pre-tokenizer, the model on each word, and the post-processor's special tokens.
/// </summary>
internal sealed class TokenizerPipeline : ITokenizerBackend
{
    private readonly INormalizer? _normalizer;
    private readonly IPreTokenizer? _preTokenizer;
    private readonly ITokenModel _model;
    private readonly IPostProcessor _postProcessor;
    private readonly IDecoder? _decoder;
    private readonly AddedTokenMatcher _raw;
    private readonly AddedTokenMatcher _normalized;
    private readonly Dictionary<int, AddedToken> _addedById = [];
    private readonly Dictionary<string, AddedToken> _addedByContent = new(StringComparer.Ordinal);

    public TokenizerPipeline(INormalizer? normalizer, IPreTokenizer? preTokenizer, ITokenModel model, IPostProcessor? postProcessor,
        IDecoder? decoder, IReadOnlyList<AddedToken> addedTokens)
    {
        _normalizer = normalizer;
        _preTokenizer = preTokenizer;
        _model = model;
        _postProcessor = postProcessor ?? new Processing.IdentityPostProcessor();
        _decoder = decoder;
        foreach (var token in addedTokens)
        {
            _addedById[token.Id] = token;
            _addedByContent[token.Content] = token;
        }
        _raw = new AddedTokenMatcher(addedTokens.Where(t => !t.Normalized).Select(t => (t.Content, t)));
        _normalized = new AddedTokenMatcher(addedTokens.Where(t => t.Normalized).Select(t => (normalizer?.Normalize(t.Content) ?? t.Content, t)));
    }

    public IReadOnlyCollection<AddedToken> AddedTokens => _addedById.Values;

    /// <summary>How many ids the post-processor adds around a sequence.</summary>
    public int SpecialTokensAdded => _postProcessor.AddedTokens;

    /// <summary>The vocabulary size, added tokens included.</summary>
    public int VocabularySize => Math.Max(_model.VocabularySize, _addedById.Count == 0 ? 0 : _addedById.Keys.Max() + 1);

    /// <summary>The ids of <paramref name="text"/> without the post-processor's special tokens.</summary>
    public List<int> EncodeContent(string text)
    {
        var ids = new List<int>();
        foreach (var (rawPart, rawToken) in _raw.Split(new Piece(text, true)))
        {
            if (rawToken is not null) { ids.Add(rawToken.Id); continue; }
            var normalized = rawPart with { Text = _normalizer?.Normalize(rawPart.Text) ?? rawPart.Text };
            foreach (var (part, token) in _normalized.Split(normalized))
            {
                if (token is not null) { ids.Add(token.Id); continue; }
                // tokenizers never hands an empty part to the pre-tokenizer (Metaspace would make "▁" of it).
                if (part.Text.Length == 0) continue;
                var words = _preTokenizer?.Split(part) ?? [part];
                foreach (var word in words) _model.Tokenize(word.Text, ids);
            }
        }
        return ids;
    }

    /// <summary>The post-processor's special tokens around <paramref name="ids"/>.</summary>
    public List<int> AddSpecialTokens(List<int> ids) => _postProcessor.Process(ids);

    public int? TokenToId(string token) => _addedByContent.TryGetValue(token, out var added) ? added.Id : _model.TokenToId(token);

    public string? IdToToken(int id) => _addedById.TryGetValue(id, out var added) ? added.Content : _model.IdToToken(id);

    public bool IsSpecial(int id) => _addedById.TryGetValue(id, out var added) && added.Special;

    /// <summary>Ids back to text through the decoder (tokens joined by spaces when there is none, as tokenizers does).</summary>
    public string Decode(IEnumerable<int> ids, bool skipSpecialTokens)
    {
        var tokens = new List<string>();
        foreach (var id in ids)
        {
            if (skipSpecialTokens && IsSpecial(id)) continue;
            tokens.Add(IdToToken(id) ?? throw new ArgumentOutOfRangeException(nameof(ids), id, $"Token id {id} is not in the vocabulary of {VocabularySize}."));
        }
        return _decoder is null ? string.Join(' ', tokens) : string.Concat(_decoder.DecodeChain(tokens));
    }
}
