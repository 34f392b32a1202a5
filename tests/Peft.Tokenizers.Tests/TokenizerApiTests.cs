using System.Text.Json.Nodes;
using static Peft.Tokenizers.Tests.TokenizerFiles;

namespace Peft.Tokenizers.Tests;

/// <summary>tokenizer_config.json's special tokens, padding side and truncation; batches as tensors; refusals.</summary>
public sealed class TokenizerApiTests : IDisposable
{
    private readonly TokenizerFiles _files = new();

    public void Dispose() => _files.Dispose();

    private static JsonObject WordLevel() => Tokenizer(null, Type("WhitespaceSplit"),
        Type("WordLevel", ("unk_token", "<unk>"), ("vocab", new JsonObject { ["<pad>"] = 0, ["<unk>"] = 1, ["<s>"] = 2, ["</s>"] = 3, ["a"] = 4, ["b"] = 5, ["c"] = 6 })),
        Template([("<s>", 2)], [("</s>", 3)]), null, Added(0, "<pad>"), Added(1, "<unk>"), Added(2, "<s>"), Added(3, "</s>"));

    [Fact]
    public void The_config_sets_special_tokens_padding_side_and_truncation_side()
    {
        var config = new JsonObject
        {
            ["pad_token"] = "<pad>", ["eos_token"] = new JsonObject { ["content"] = "</s>", ["special"] = true }, ["bos_token"] = "<s>",
            ["padding_side"] = "left", ["truncation_side"] = "left", ["model_max_length"] = 5,
        };
        var tokenizer = PretrainedTokenizer.FromDirectory(_files.Write("left", WordLevel(), config));

        Assert.Equal((0, 2, 3), (tokenizer.PadTokenId, tokenizer.BosTokenId, tokenizer.EosTokenId));
        Assert.Equal([2, 5, 6, 3], tokenizer.Encode("a b c", maxLength: 4)); // truncated on the left, specials kept
        using var batch = tokenizer.EncodeBatch(["a b c a b", "c"]);
        Assert.Equal([2L, 5L], batch.InputIds.shape);
        Assert.Equal([2L, 6, 4, 5, 3, 0, 0, 2, 6, 3], batch.InputIds.data<long>().ToArray()); // model_max_length 5, padded on the left
        Assert.Equal([1L, 1, 1, 1, 1, 0, 0, 1, 1, 1], batch.AttentionMask.data<long>().ToArray());
        Assert.Equal("a b c", tokenizer.Decode([2, 4, 5, 6, 3]));
        Assert.Equal("<s> a </s>", tokenizer.Decode([2, 4, 3], skipSpecialTokens: false));
    }

    [Fact]
    public void Right_padding_to_max_length_and_the_default_sides()
    {
        var tokenizer = PretrainedTokenizer.FromDirectory(_files.Write("right", WordLevel(), new JsonObject { ["pad_token"] = "<pad>" }));

        using var batch = tokenizer.EncodeBatch(["a", "b c"], maxLength: 6, padding: Padding.MaxLength);

        Assert.Equal([2L, 4, 3, 0, 0, 0, 2, 5, 6, 3, 0, 0], batch.InputIds.data<long>().ToArray());
        Assert.Equal([2, 4, 3], tokenizer.Encode("a b c", maxLength: 3));
        Assert.Equal([4, 1], tokenizer.Encode("a zzz", addSpecialTokens: false));
    }

    [Fact]
    public void Padding_without_a_pad_token_asks_for_one_and_a_set_pad_token_is_used()
    {
        var tokenizer = PretrainedTokenizer.FromDirectory(_files.Write("nopad", WordLevel(), new JsonObject { ["eos_token"] = "</s>" }));

        var error = Assert.Throws<InvalidOperationException>(() => tokenizer.EncodeBatch(["a", "a b"]));
        Assert.Contains("PadToken", error.Message);
        Assert.Throws<ArgumentException>(() => tokenizer.PadToken = "<nope>");
        tokenizer.PadToken = "</s>";
        using var batch = tokenizer.EncodeBatch(["a", "a b"]);
        Assert.Equal([2L, 4, 3, 3, 2, 4, 5, 3], batch.InputIds.data<long>().ToArray());
    }

    [Fact]
    public void An_unsupported_component_is_refused_by_name()
    {
        var json = WordLevel();
        json["pre_tokenizer"] = Type("UnicodeScripts");
        var directory = _files.Write("unsupported", json);

        var error = Assert.Throws<TokenizerFileException>(() => PretrainedTokenizer.FromDirectory(directory));
        Assert.Contains("UnicodeScripts", error.Message);
        Assert.Contains("tokenizer.json", error.Message);
    }

    [Fact]
    public void A_directory_without_tokenizer_files_says_what_it_looked_for()
    {
        var error = Assert.Throws<FileNotFoundException>(() => PretrainedTokenizer.FromDirectory(_files.Directory));
        Assert.Contains("tokenizer.json", error.Message);
        Assert.Contains("vocab.txt", error.Message);
    }

    [Fact]
    public void Decoding_an_id_outside_the_vocabulary_names_it()
    {
        var tokenizer = PretrainedTokenizer.FromDirectory(_files.Write("range", WordLevel()));

        var error = Assert.Throws<ArgumentOutOfRangeException>(() => tokenizer.Decode([4, 99]));
        Assert.Contains("99", error.Message);
    }
}
