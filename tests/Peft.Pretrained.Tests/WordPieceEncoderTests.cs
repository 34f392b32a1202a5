namespace Peft.Pretrained.Tests;

[Collection(MiniLmCollection.Name)]
public sealed class WordPieceEncoderTests(MiniLmFixture fixture)
{
    private string VocabularyPath => Path.Combine(fixture.ModelDirectory, "vocab.txt");

    // Ids are looked up in the vocabulary file (id = line number), never written down.
    private int[] Ids(params string[] tokens)
    {
        var vocabulary = File.ReadLines(VocabularyPath).Select((token, id) => (token, id)).ToDictionary(p => p.token, p => p.id);
        return [.. tokens.Select(t => vocabulary.TryGetValue(t, out var id) ? id : throw new KeyNotFoundException($"'{t}' is not in the vocabulary"))];
    }

    [Fact]
    public void A_sentence_is_lower_cased_stripped_of_accents_split_into_word_pieces_and_framed()
    {
        var encoder = WordPieceEncoder.FromVocabulary(VocabularyPath);

        var ids = encoder.Encode("Café society, naïve TOKENIZERS & stardate!");

        Assert.Equal(Ids("[CLS]", "cafe", "society", ",", "naive", "token", "##izer", "##s", "&", "star", "##date", "!", "[SEP]"), ids);
        Assert.Equal(Ids("[PAD]", "[CLS]", "[SEP]"), new[] { encoder.PadTokenId, encoder.ClsTokenId, encoder.SepTokenId });
        Assert.Equal(0, encoder.PadTokenId);
    }

    [Fact]
    public void Long_texts_are_truncated_to_max_length_keeping_the_separator()
    {
        var encoder = WordPieceEncoder.FromVocabulary(VocabularyPath, maxLength: 6);
        var full = WordPieceEncoder.FromVocabulary(VocabularyPath, maxLength: 512).Encode("the quick brown fox jumps over the lazy dog");

        var ids = encoder.Encode("the quick brown fox jumps over the lazy dog");

        Assert.Equal(Ids("[CLS]", "the", "quick", "brown", "fox", "[SEP]"), ids);
        Assert.Equal(11, full.Count);
    }

    [Fact]
    public void A_batch_is_padded_to_its_longest_text_with_an_attention_mask()
    {
        var encoder = WordPieceEncoder.FromVocabulary(VocabularyPath);

        using var batch = encoder.EncodeBatch(["hello world", "dog"]);

        Assert.Equal(TorchSharp.torch.int64, batch.InputIds.dtype);
        Assert.Equal(TorchSharp.torch.int64, batch.AttentionMask.dtype);
        Assert.Equal([2L, 4L], batch.InputIds.shape);
        Assert.Equal([.. Ids("[CLS]", "hello", "world", "[SEP]"), .. Ids("[CLS]", "dog", "[SEP]", "[PAD]")],
            batch.InputIds.data<long>().ToArray().Select(i => (int)i));
        Assert.Equal([1L, 1, 1, 1, 1, 1, 1, 0], batch.AttentionMask.data<long>().ToArray());
    }

    [Fact]
    public void The_written_vocabulary_has_one_token_a_line_without_carriage_returns()
    {
        Assert.DoesNotContain('\r', File.ReadAllText(VocabularyPath));
        Assert.Equal(30522, File.ReadLines(VocabularyPath).Count());
    }
}
