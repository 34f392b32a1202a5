namespace Peft.Tokenizers.Tests;

/// <summary>
/// Byte-level BPE on GPT-2's real vocabulary (<see cref="Gpt2Vocabulary"/>). Expected ids: tiktoken's published
/// test vectors for its gpt2 encoding (tiktoken/tests/test_encoding.py: "hello world" → [31373, 995]; "hello
/// &lt;|endoftext|&gt;" → [31373, 220, 50256]), GPT-2's well-known "Hello world" → [15496, 995], and for
/// everything else Hugging Face tokenizers on the same file.
/// </summary>
public sealed class ByteLevelBpeTests : IDisposable
{
    private readonly TokenizerFiles _files = new();

    public void Dispose() => _files.Dispose();

    [Fact]
    public void Gpt2_gives_the_published_ids()
    {
        var tokenizer = PretrainedTokenizer.FromDirectory(_files.Write("gpt2", TokenizerFiles.Gpt2()));

        Assert.Equal([15496, 995], tokenizer.Encode("Hello world"));
        Assert.Equal([31373, 995], tokenizer.Encode("hello world"));
        Assert.Equal([31373, 220, 50256], tokenizer.Encode("hello <|endoftext|>"));
        Assert.Equal("hello world", tokenizer.Decode([31373, 995]));
    }

    [Fact]
    public void Gpt2_agrees_with_hugging_face_tokenizers_and_with_tiktoken()
    {
        var directory = _files.Write("gpt2", TokenizerFiles.Gpt2());
        var tokenizer = PretrainedTokenizer.FromDirectory(directory);
        var tiktoken = Microsoft.ML.Tokenizers.TiktokenTokenizer.CreateForModel("gpt2");

        foreach (var text in Reference.Corpus)
        {
            var ids = tokenizer.Encode(text);
            Assert.Equal(Reference.Encode(directory, text), ids);
            Assert.Equal(Reference.Decode(directory, ids), tokenizer.Decode(ids));
            if (!text.Contains("<|endoftext|>", StringComparison.Ordinal)) Assert.Equal(tiktoken.EncodeToIds(text), ids);
        }
    }

    [Theory]
    [InlineData("llama3")]
    [InlineData("qwen2")]
    public void Split_then_byte_level_pipelines_agree_with_hugging_face_tokenizers(string family)
    {
        var json = family == "llama3"
            ? TokenizerFiles.SplitThenByteLevel(TokenizerFiles.Llama3Pattern, nfc: false, ignoreMerges: true)
            : TokenizerFiles.SplitThenByteLevel(TokenizerFiles.Qwen2Pattern, nfc: true, ignoreMerges: false);
        var directory = _files.Write(family, json);
        var tokenizer = PretrainedTokenizer.FromDirectory(directory);

        foreach (var text in Reference.Corpus)
        {
            var ids = tokenizer.Encode(text);
            Assert.Equal(Reference.Encode(directory, text), ids);
            Assert.Equal(Reference.Decode(directory, ids), tokenizer.Decode(ids));
        }
    }

    [Fact]
    public void A_directory_with_vocab_json_and_merges_txt_tokenizes_as_its_tokenizer_json()
    {
        var legacy = Path.Combine(_files.Directory, "legacy");
        Directory.CreateDirectory(legacy);
        File.WriteAllText(Path.Combine(legacy, "vocab.json"), System.Text.Json.JsonSerializer.Serialize(Gpt2Vocabulary.Vocabulary));
        File.WriteAllLines(Path.Combine(legacy, "merges.txt"), ["#version: 0.2", .. Gpt2Vocabulary.Merges.Select(m => $"{m.Left} {m.Right}")]);
        var fromJson = PretrainedTokenizer.FromDirectory(_files.Write("gpt2", TokenizerFiles.Gpt2()));
        var fromVocabulary = PretrainedTokenizer.FromDirectory(legacy);

        foreach (var text in Reference.Corpus.Where(t => !t.Contains("<|", StringComparison.Ordinal)))
        {
            Assert.Equal(fromJson.Encode(text), fromVocabulary.Encode(text));
        }
        Assert.Equal(Gpt2Vocabulary.EndOfText, fromVocabulary.EosTokenId);
    }
}
