using Peft.Tokenizers.Files;
using Peft.Tokenizers.Pipeline;
using TorchSharp;

namespace Peft.Tokenizers;

/// <summary>
/// A Hugging Face model directory's tokenizer, as transformers' <c>AutoTokenizer.from_pretrained</c> gives:
/// <c>tokenizer.json</c> (byte-level BPE as GPT-2/Llama-3/Qwen, SentencePiece BPE as Llama-2, Unigram as
/// T5/mT5, WordPiece as BERT) with <c>tokenizer_config.json</c>'s special tokens, padding side and
/// truncation; without a tokenizer.json, GPT-2's vocab.json + merges.txt or BERT's vocab.txt (the
/// pipelines transformers builds from them).
/// </summary>
public sealed class PretrainedTokenizer
{
    private readonly ITokenizerBackend _backend;
    private string? _padToken;

    private PretrainedTokenizer(ITokenizerBackend backend, TokenizerSettings settings)
    {
        _backend = backend;
        Settings = settings;
        _padToken = settings.PadToken;
        ValidateToken(_padToken, "pad_token");
    }

    /// <summary>tokenizer_config.json's settings.</summary>
    public TokenizerSettings Settings { get; }

    /// <summary>Entries in the vocabulary, added tokens included.</summary>
    public int VocabularySize => _backend.VocabularySize;

    /// <summary>The padding token (tokenizer_config.json's <c>pad_token</c>); set it (often to the EOS token) to pad a model that has none.</summary>
    /// <exception cref="ArgumentException">The token is not in the vocabulary.</exception>
    public string? PadToken
    {
        get => _padToken;
        set
        {
            ValidateToken(value, nameof(PadToken));
            _padToken = value;
        }
    }

    /// <summary>The id of <see cref="PadToken"/>.</summary>
    public int? PadTokenId => Id(_padToken);

    /// <summary>The id of the beginning-of-sequence token.</summary>
    public int? BosTokenId => Id(Settings.BosToken);

    /// <summary>The id of the end-of-sequence token.</summary>
    public int? EosTokenId => Id(Settings.EosToken);

    /// <summary>The id of the unknown token.</summary>
    public int? UnkTokenId => Id(Settings.UnkToken);

    /// <summary>How many ids the tokenizer frames one sequence with (BERT: 2; GPT-2: 0; Llama-2: 1).</summary>
    public int SpecialTokensAdded => _backend.SpecialTokensAdded;

    /// <summary>Loads the tokenizer of a model directory.</summary>
    /// <exception cref="FileNotFoundException">The directory has no tokenizer.json, no vocab.json + merges.txt and no vocab.txt.</exception>
    /// <exception cref="TokenizerFileException">A file is malformed or uses a component this library does not implement (named).</exception>
    public static PretrainedTokenizer FromDirectory(string directory)
    {
        ArgumentNullException.ThrowIfNull(directory);
        var config = Path.Combine(directory, "tokenizer_config.json");
        var settings = TokenizerSettings.Read(config, Path.Combine(directory, "special_tokens_map.json"));
        var json = Path.Combine(directory, "tokenizer.json");
        if (File.Exists(json)) return new PretrainedTokenizer(TokenizerJson.Read(json), settings);
        string vocabulary = Path.Combine(directory, "vocab.json"), merges = Path.Combine(directory, "merges.txt");
        if (File.Exists(vocabulary) && File.Exists(merges))
        {
            return new PretrainedTokenizer(TokenizerJson.ReadByteLevelFiles(vocabulary, merges),
                settings with { EosToken = settings.EosToken ?? "<|endoftext|>", BosToken = settings.BosToken ?? "<|endoftext|>" });
        }
        var wordPieces = Path.Combine(directory, "vocab.txt");
        if (File.Exists(wordPieces))
        {
            return new PretrainedTokenizer(TokenizerJson.ReadWordPieceVocabulary(wordPieces, LowerCases(config)),
                settings with { PadToken = settings.PadToken ?? "[PAD]", UnkToken = settings.UnkToken ?? "[UNK]", ClsToken = settings.ClsToken ?? "[CLS]", SepToken = settings.SepToken ?? "[SEP]", MaskToken = settings.MaskToken ?? "[MASK]" });
        }
        throw new FileNotFoundException($"{directory}: no tokenizer.json, no vocab.json + merges.txt, no vocab.txt; nothing to tokenize with.", json);
    }

    /// <summary>Loads a tokenizer.json, with the settings of <paramref name="tokenizerConfigPath"/> when given.</summary>
    /// <exception cref="FileNotFoundException"><paramref name="tokenizerJsonPath"/> does not exist.</exception>
    /// <exception cref="TokenizerFileException">The file is malformed or uses a component this library does not implement (named).</exception>
    public static PretrainedTokenizer FromFile(string tokenizerJsonPath, string? tokenizerConfigPath = null)
    {
        if (!File.Exists(tokenizerJsonPath)) throw new FileNotFoundException($"{tokenizerJsonPath}: not found.", tokenizerJsonPath);
        return new PretrainedTokenizer(TokenizerJson.Read(tokenizerJsonPath), TokenizerSettings.Read(tokenizerConfigPath));
    }

    /// <summary>The ids of <paramref name="text"/>.</summary>
    /// <param name="text">The text.</param>
    /// <param name="addSpecialTokens">Frame it with the post-processor's special tokens (BERT's [CLS] … [SEP], Llama's &lt;s&gt;).</param>
    /// <param name="maxLength">Truncate to this many ids, special tokens included, on <see cref="TokenizerSettings.TruncationSide"/>.</param>
    public IReadOnlyList<int> Encode(string text, bool addSpecialTokens = true, int? maxLength = null)
    {
        ArgumentNullException.ThrowIfNull(text);
        var ids = _backend.EncodeContent(text);
        if (maxLength is { } max)
        {
            var room = max - (addSpecialTokens ? _backend.SpecialTokensAdded : 0);
            if (room < 0) throw new ArgumentOutOfRangeException(nameof(maxLength), max, $"maxLength {max} leaves no room for the {_backend.SpecialTokensAdded} special tokens.");
            if (ids.Count > room) ids = Settings.TruncationSide == Side.Right ? ids[..room] : ids[^room..];
        }
        return addSpecialTokens ? _backend.AddSpecialTokens(ids) : ids;
    }

    /// <summary>Text from ids; special tokens are left out unless <paramref name="skipSpecialTokens"/> is false.</summary>
    /// <exception cref="ArgumentOutOfRangeException">An id is outside the vocabulary.</exception>
    public string Decode(IEnumerable<int> ids, bool skipSpecialTokens = true)
    {
        ArgumentNullException.ThrowIfNull(ids);
        return _backend.Decode(ids, skipSpecialTokens);
    }

    /// <summary>Text from a 1-D tensor of ids (one row of a generated batch).</summary>
    public string Decode(torch.Tensor ids, bool skipSpecialTokens = true)
    {
        if (ids.dim() != 1) throw new ArgumentException($"Decode takes one row of ids (1-D), got shape [{string.Join(", ", ids.shape)}].", nameof(ids));
        return Decode(ids.to(torch.int64).cpu().data<long>().ToArray().Select(i => checked((int)i)), skipSpecialTokens);
    }

    /// <summary>
    /// Encodes <paramref name="texts"/> and pads them into tensors, as transformers'
    /// <c>tokenizer(texts, padding=True, truncation=True, max_length=..., return_tensors="pt")</c>.
    /// </summary>
    /// <param name="texts">At least one text.</param>
    /// <param name="maxLength">Truncate each to this many ids (special tokens included); null: <see cref="TokenizerSettings.ModelMaxLength"/>, or no limit.</param>
    /// <param name="padding">Pad to the longest or to <paramref name="maxLength"/>.</param>
    /// <param name="addSpecialTokens">Frame each text with its special tokens.</param>
    /// <exception cref="InvalidOperationException">The tokenizer has no pad token (set <see cref="PadToken"/>) and the texts differ in length.</exception>
    public TokenizedBatch EncodeBatch(IReadOnlyList<string> texts, int? maxLength = null, Padding padding = Padding.Longest, bool addSpecialTokens = true)
    {
        ArgumentNullException.ThrowIfNull(texts);
        if (texts.Count == 0) throw new ArgumentException("Cannot encode an empty batch.", nameof(texts));
        var limit = maxLength ?? Settings.ModelMaxLength;
        if (padding == Padding.MaxLength && limit is null) throw new ArgumentException("Padding.MaxLength needs maxLength (or model_max_length in tokenizer_config.json).", nameof(padding));
        var encoded = texts.Select(t => Encode(t, addSpecialTokens, limit)).ToList();
        var length = padding == Padding.MaxLength ? limit!.Value : encoded.Max(e => e.Count);
        var needsPadding = encoded.Any(e => e.Count < length);
        var pad = PadTokenId ?? (needsPadding
            ? throw new InvalidOperationException("The tokenizer has no pad token (tokenizer_config.json sets no pad_token); set PadToken (e.g. to the EOS token) before padding a batch.")
            : 0);
        var ids = new long[texts.Count * length];
        var mask = new long[texts.Count * length];
        Array.Fill(ids, pad);
        for (int row = 0; row < encoded.Count; row++)
        {
            var sequence = encoded[row];
            var offset = row * length + (Settings.PaddingSide == Side.Left ? length - sequence.Count : 0);
            for (int t = 0; t < sequence.Count; t++)
            {
                ids[offset + t] = sequence[t];
                mask[offset + t] = 1;
            }
        }
        return new TokenizedBatch(torch.tensor(ids, [texts.Count, length], torch.int64), torch.tensor(mask, [texts.Count, length], torch.int64), encoded);
    }

    /// <summary>The id of a token (added tokens included), or null.</summary>
    public int? TokenToId(string token) => _backend.TokenToId(token);

    /// <summary>The token of an id, or null.</summary>
    public string? IdToToken(int id) => _backend.IdToToken(id);

    private int? Id(string? token) => token is null ? null : _backend.TokenToId(token);

    private void ValidateToken(string? token, string name)
    {
        if (token is not null && _backend.TokenToId(token) is null) throw new ArgumentException($"{name} '{token}' is not in the vocabulary.", name);
    }

    /// <summary>BERT's <c>do_lower_case</c> (true when the config does not say).</summary>
    private static bool LowerCases(string configPath)
    {
        if (!File.Exists(configPath)) return true;
        using var document = System.Text.Json.JsonDocument.Parse(File.ReadAllBytes(configPath));
        return !document.RootElement.TryGetProperty("do_lower_case", out var value) || value.ValueKind != System.Text.Json.JsonValueKind.False;
    }
}
