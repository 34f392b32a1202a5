using System.Text.Json.Nodes;
using Peft.Pretrained;
using static Peft.Tokenizers.Tests.TokenizerFiles;

namespace Peft.Tokenizers.Tests;

/// <summary>
/// WordPiece as BERT's tokenizer.json lays it out (BertNormalizer, BertPreTokenizer, [CLS] $A [SEP]): a hand-made
/// vocabulary (ids by the definition of greedy longest match) and all-MiniLM-L6-v2's real 30,522-entry vocabulary,
/// checked against the ids its tokens have in vocab.txt (line numbers) and Hugging Face tokenizers, from a
/// tokenizer.json and from a bare vocab.txt.
/// </summary>
public sealed class WordPieceTests : IDisposable
{
    private readonly TokenizerFiles _files = new();

    public void Dispose() => _files.Dispose();

    private static JsonObject Bert(IReadOnlyList<string> vocabulary)
    {
        var ids = vocabulary.Select((t, i) => (t, i)).ToDictionary(p => p.t, p => p.i);
        var model = Type("WordPiece", ("unk_token", "[UNK]"), ("continuing_subword_prefix", "##"), ("max_input_chars_per_word", 100),
            ("vocab", new JsonObject(ids.Select(p => KeyValuePair.Create(p.Key, (JsonNode?)p.Value)))));
        return Tokenizer(
            Type("BertNormalizer", ("clean_text", true), ("handle_chinese_chars", true), ("strip_accents", null), ("lowercase", true)),
            Type("BertPreTokenizer"), model, Template([("[CLS]", ids["[CLS]"])], [("[SEP]", ids["[SEP]"])]),
            Type("WordPiece", ("prefix", "##"), ("cleanup", true)),
            [.. new[] { "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]" }.Where(ids.ContainsKey).Select(t => Added(ids[t], t))]);
    }

    [Fact]
    public void Greedy_longest_match_with_continuation_pieces()
    {
        var directory = _files.Write("tiny", Bert(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "hello", "world", "un", "##aff", "##able", "!"]));
        var tokenizer = PretrainedTokenizer.FromDirectory(directory);

        // unaffable = un ##aff ##able; xyz has no piece, so the whole word is [UNK].
        Assert.Equal([2, 4, 6, 7, 8, 5, 9, 1, 3], tokenizer.Encode("Hello unaffable world! xyz"));
        Assert.Equal("hello unaffable world!", tokenizer.Decode([2, 4, 6, 7, 8, 5, 9, 3]));
        Assert.Equal(Reference.Encode(directory, "Hello unaffable world! xyz"), tokenizer.Encode("Hello unaffable world! xyz"));
    }

    [Fact]
    public void MiniLm_vocabulary_gives_its_ids_from_tokenizer_json_and_from_vocab_txt_as_hugging_face_does()
    {
        var vocabulary = MiniLmVocabulary();
        var directory = _files.Write("minilm", Bert(vocabulary));
        File.WriteAllLines(Path.Combine(_files.Directory, "vocab.txt"), vocabulary);
        var tokenizer = PretrainedTokenizer.FromDirectory(directory);
        var legacy = PretrainedTokenizer.FromDirectory(_files.Directory); // vocab.txt only
        int Id(string token) => vocabulary.IndexOf(token);

        Assert.Equal(
            new[] { "[CLS]", "cafe", "society", ",", "naive", "token", "##izer", "##s", "&", "star", "##date", "!", "[SEP]" }.Select(Id),
            tokenizer.Encode("Café society, naïve TOKENIZERS & stardate!"));
        Assert.Equal([101, 102], new[] { Id("[CLS]"), Id("[SEP]") });
        foreach (var text in Reference.Corpus.Where(t => !t.Contains("<|", StringComparison.Ordinal)))
        {
            var ids = tokenizer.Encode(text);
            Assert.True(Reference.Encode(directory, text).SequenceEqual(ids), $"{text}: {string.Join(",", Reference.Encode(directory, text))} != {string.Join(",", ids)}");
            Assert.Equal(legacy.Encode(text), ids);
            Assert.Equal(Reference.Decode(directory, ids), tokenizer.Decode(ids));
        }
    }

    private static List<string> MiniLmVocabulary()
    {
        var bytes = Pretrained.Onnx.AssemblyResources.Read(MiniLmModel.FindPackageAssembly(), MiniLmModel.VocabularyResource);
        return [.. System.Text.Encoding.UTF8.GetString(bytes).Replace("\r\n", "\n", StringComparison.Ordinal).Split('\n').Where(l => l.Length > 0)];
    }
}
