using Microsoft.ML.Tokenizers;
using TorchSharp;

namespace Peft.Pretrained;

/// <summary>A padded batch of encoded texts: both tensors are int64 of shape (B, T), T the longest text's length.</summary>
/// <param name="InputIds">Token ids, <c>[CLS] … [SEP]</c> then <c>[PAD]</c> to the batch length.</param>
/// <param name="AttentionMask">1 for real tokens, 0 for padding.</param>
public sealed record EncodedBatch(torch.Tensor InputIds, torch.Tensor AttentionMask) : IDisposable
{
    /// <summary>Disposes both tensors.</summary>
    public void Dispose()
    {
        InputIds.Dispose();
        AttentionMask.Dispose();
    }
}

/// <summary>
/// Uncased BERT WordPiece tokenization (Microsoft.ML.Tokenizers' <see cref="BertTokenizer"/>) with the behaviour of
/// Hugging Face's <c>BertTokenizer(do_lower_case=True)</c> called with <c>truncation=True, padding=True</c>:
/// lower-casing and accent stripping, <c>[CLS] … [SEP]</c>, truncation to <see cref="MaxLength"/> tokens
/// (specials included), and right padding with <c>[PAD]</c> plus an attention mask.
/// </summary>
public sealed class WordPieceEncoder
{
    private readonly BertTokenizer _tokenizer;

    private WordPieceEncoder(BertTokenizer tokenizer, int maxLength)
    {
        _tokenizer = tokenizer;
        MaxLength = maxLength;
    }

    /// <summary>The longest encoding returned, <c>[CLS]</c> and <c>[SEP]</c> included.</summary>
    public int MaxLength { get; }

    /// <summary>The id of <c>[PAD]</c> (0 in BERT vocabularies).</summary>
    public int PadTokenId => _tokenizer.PaddingTokenId;

    /// <summary>The id of <c>[CLS]</c>.</summary>
    public int ClsTokenId => _tokenizer.ClassificationTokenId;

    /// <summary>The id of <c>[SEP]</c>.</summary>
    public int SepTokenId => _tokenizer.SeparatorTokenId;

    /// <summary>An encoder over the WordPiece vocabulary <paramref name="vocabularyPath"/> (one token a line, id = line number).</summary>
    /// <param name="vocabularyPath">A BERT <c>vocab.txt</c>, e.g. the one in <see cref="MiniLmModel.EnsureConverted"/>'s directory.</param>
    /// <param name="maxLength">The longest encoding, special tokens included (at least 2).</param>
    /// <exception cref="FileNotFoundException">The vocabulary file does not exist.</exception>
    public static WordPieceEncoder FromVocabulary(string vocabularyPath, int maxLength = 128)
    {
        ArgumentNullException.ThrowIfNull(vocabularyPath);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxLength, 2);
        if (!File.Exists(vocabularyPath))
        {
            throw new FileNotFoundException($"WordPiece vocabulary '{vocabularyPath}' not found.", vocabularyPath);
        }
        var tokenizer = BertTokenizer.Create(vocabularyPath, new BertOptions
        {
            LowerCaseBeforeTokenization = true,
            RemoveNonSpacingMarks = true, // Hugging Face strips accents whenever it lower-cases (strip_accents=None).
            ApplyBasicTokenization = true,
            SplitOnSpecialTokens = true,
            IndividuallyTokenizeCjk = true,
        });
        return new WordPieceEncoder(tokenizer, maxLength);
    }

    /// <summary>The ids of one text: <c>[CLS]</c>, its first <see cref="MaxLength"/> − 2 word pieces, <c>[SEP]</c>.</summary>
    public IReadOnlyList<int> Encode(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var pieces = _tokenizer.EncodeToIds(text, addSpecialTokens: false);
        var kept = Math.Min(pieces.Count, MaxLength - 2);
        var ids = new int[kept + 2];
        ids[0] = ClsTokenId;
        for (var i = 0; i < kept; i++) ids[i + 1] = pieces[i];
        ids[^1] = SepTokenId;
        return ids;
    }

    /// <summary>Encodes <paramref name="texts"/> and pads them to the longest, on the CPU.</summary>
    /// <exception cref="ArgumentException"><paramref name="texts"/> is empty.</exception>
    public EncodedBatch EncodeBatch(IReadOnlyList<string> texts)
    {
        ArgumentNullException.ThrowIfNull(texts);
        if (texts.Count == 0) throw new ArgumentException("Cannot encode an empty batch.", nameof(texts));
        var encoded = texts.Select(Encode).ToList();
        var length = encoded.Max(e => e.Count);
        var ids = new long[texts.Count * length];
        var mask = new long[texts.Count * length];
        for (var row = 0; row < encoded.Count; row++)
        {
            var offset = row * length;
            for (var i = 0; i < length; i++)
            {
                var real = i < encoded[row].Count;
                ids[offset + i] = real ? encoded[row][i] : PadTokenId;
                mask[offset + i] = real ? 1 : 0;
            }
        }
        return new EncodedBatch(
            torch.tensor(ids, [texts.Count, length], torch.int64),
            torch.tensor(mask, [texts.Count, length], torch.int64));
    }
}
