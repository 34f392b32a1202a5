using System.Text.Json.Nodes;
using static Peft.Tokenizers.Tests.TokenizerFiles;

namespace Peft.Tokenizers.Tests;

/// <summary>
/// SentencePiece-style tokenizers in tokenizer.json form, on small hand-made vocabularies whose expected ids
/// follow from the algorithm's definition (worked out in each test's comments), and on a corpus compared with
/// Hugging Face tokenizers: BPE with byte fallback laid out as Llama-2's (Prepend + Replace normalizers, or
/// the newer Metaspace pre-tokenizer) and Unigram laid out as T5's (Precompiled normalizer, Metaspace).
/// </summary>
public sealed class SentencePieceTests : IDisposable
{
    private readonly TokenizerFiles _files = new();

    public void Dispose() => _files.Dispose();

    /// <summary>&lt;unk&gt; &lt;s&gt; &lt;/s&gt;, the 256 byte pieces (ids 3–258), then pieces built by ten merges.</summary>
    private static (List<KeyValuePair<string, int>> Vocabulary, List<(string, string)> Merges) LlamaStyleVocabulary()
    {
        var vocabulary = new List<string> { "<unk>", "<s>", "</s>" };
        vocabulary.AddRange(Enumerable.Range(0, 256).Select(b => $"<0x{b:X2}>"));
        vocabulary.AddRange(["▁", "h", "e", "l", "o", "w", "r", "d", "▁h", "ll", "▁he", "llo", "▁hello", "▁w", "or", "▁wor", "ld", "▁world", ","]);
        List<(string, string)> merges = [("▁", "h"), ("l", "l"), ("▁h", "e"), ("ll", "o"), ("▁he", "llo"), ("▁", "w"), ("o", "r"), ("▁w", "or"), ("l", "d"), ("▁wor", "ld")];
        return (vocabulary.Select((t, i) => KeyValuePair.Create(t, i)).ToList(), merges);
    }

    private static JsonObject Llama2(bool metaspace)
    {
        var (vocabulary, merges) = LlamaStyleVocabulary();
        JsonNode? normalizer = metaspace ? null : Sequence("normalizers", Type("Prepend", ("prepend", "▁")), Type("Replace", ("pattern", Literal(" ")), ("content", "▁")));
        JsonNode? preTokenizer = metaspace ? Type("Metaspace", ("replacement", "▁"), ("prepend_scheme", "first"), ("split", false)) : null;
        JsonNode decoder = metaspace
            ? Sequence("decoders", Type("Metaspace", ("replacement", "▁"), ("prepend_scheme", "first"), ("split", false)), Type("ByteFallback"), Type("Fuse"))
            : Sequence("decoders", Type("Replace", ("pattern", Literal("▁")), ("content", " ")), Type("ByteFallback"), Type("Fuse"), Type("Strip", ("content", " "), ("start", 1), ("stop", 0)));
        return Tokenizer(normalizer, preTokenizer, Bpe(vocabulary, merges, unk: "<unk>", byteFallback: true, fuseUnk: true), Template([("<s>", 1)], []), decoder,
            Added(0, "<unk>"), Added(1, "<s>"), Added(2, "</s>"));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Llama2_style_bpe_merges_by_rank_and_falls_back_to_bytes(bool metaspace)
    {
        var directory = _files.Write(metaspace ? "metaspace" : "llama2", Llama2(metaspace));
        var tokenizer = PretrainedTokenizer.FromDirectory(directory);

        // "▁hello▁world": the ten merges in rank order leave ▁hello (271) and ▁world (276), after <s> (1).
        Assert.Equal([1, 271, 276], tokenizer.Encode("hello world"));
        // ü is not a piece: its UTF-8 bytes C3 BC are the byte pieces 3 + 0xC3 = 198 and 3 + 0xBC = 191.
        Assert.Equal([1, 271, 277, 272, 198, 191], tokenizer.Encode("hello, wü"));
        Assert.Equal("hello, wü", tokenizer.Decode([1, 271, 277, 272, 198, 191]));

        foreach (var text in Reference.Corpus.Append("<s>hello</s> world"))
        {
            var ids = tokenizer.Encode(text);
            Assert.Equal(Reference.Encode(directory, text), ids);
            Assert.Equal(Reference.Decode(directory, ids), tokenizer.Decode(ids));
        }
    }

    /// <summary>
    /// A darts-clone double array with one rule, fullwidth Ａ (UTF-8 EF BC A1) → "A": the root's offset 256 leads to
    /// unit 0x1EF (label EF), offset 256 to 0x53 (label BC), offset 512 to 0x2F2 (label A1, has leaf), whose leaf
    /// 0x2F3 holds the value 0, the offset of "A\0" in the replacement table.
    /// </summary>
    private static string FullwidthACharsmap()
    {
        var trie = new uint[1024];
        trie[0] = 256u << 10;
        trie[0x1EF] = (256u << 10) | 0xEF;
        trie[0x53] = (512u << 10) | 0xBC;
        trie[0x2F2] = (1u << 10) | (1u << 8) | 0xA1;
        trie[0x2F3] = 1u << 31;
        var blob = new List<byte>(BitConverter.GetBytes((uint)(trie.Length * 4)));
        foreach (var unit in trie) blob.AddRange(BitConverter.GetBytes(unit));
        blob.AddRange("A\0"u8.ToArray());
        return Convert.ToBase64String([.. blob]);
    }

    private static JsonObject T5()
    {
        (string, double)[] pieces =
        [
            ("<pad>", 0), ("</s>", 0), ("<unk>", 0), ("▁", -2), ("▁hello", -3), ("▁he", -4), ("llo", -4), ("▁world", -3.5), ("▁wor", -5), ("ld", -5),
            ("A", -4), ("h", -6), ("e", -6), ("l", -6), ("o", -6), ("w", -6), ("r", -6), ("d", -6), ("▁h", -5), ("ello", -3.5),
        ];
        var model = Type("Unigram", ("unk_id", 2), ("byte_fallback", false),
            ("vocab", new JsonArray([.. pieces.Select(p => (JsonNode)new JsonArray(p.Item1, p.Item2))])));
        return Tokenizer(
            Type("Precompiled", ("precompiled_charsmap", FullwidthACharsmap())),
            Sequence("pretokenizers", Type("WhitespaceSplit"), Type("Metaspace", ("replacement", "▁"), ("prepend_scheme", "always"), ("split", true))),
            model, Template([], [("</s>", 1)]), Type("Metaspace", ("replacement", "▁"), ("prepend_scheme", "always"), ("split", true)),
            Added(0, "<pad>"), Added(1, "</s>"), Added(2, "<unk>"));
    }

    [Fact]
    public void T5_style_unigram_takes_the_most_probable_segmentation()
    {
        var directory = _files.Write("t5", T5());
        var tokenizer = PretrainedTokenizer.FromDirectory(directory);

        // ▁hello (−3) beats ▁he + llo (−8) and ▁h + ello (−8.5); ▁world (−3.5) beats ▁wor + ld (−10); then </s>.
        Assert.Equal([4, 7, 1], tokenizer.Encode("hello world"));
        // Ａ becomes A (Precompiled); "▁Ahello" is best as ▁ A h ello (−2 − 4 − 6 − 3.5).
        Assert.Equal([3, 10, 11, 19, 1], tokenizer.Encode("Ａhello"));
        // x has no piece: ▁ then <unk> (score min − 10 = −16).
        Assert.Equal([4, 3, 2, 1], tokenizer.Encode("hello x"));
        Assert.Equal("hello world", tokenizer.Decode([4, 7, 1]));

        foreach (var text in Reference.Corpus.Append("Ａ Ａhello ＡＡ"))
        {
            var ids = tokenizer.Encode(text);
            Assert.Equal(Reference.Encode(directory, text), ids);
            Assert.Equal(Reference.Decode(directory, ids), tokenizer.Decode(ids));
        }
    }
}
