using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using Peft.Tokenizers.Models;
using Peft.Tokenizers.Normalizers;
using Peft.Tokenizers.Pipeline;
using Peft.Tokenizers.PreTokenizers;
using Peft.Tokenizers.Processing;

namespace Peft.Tokenizers.Files;

/// <summary>
/// Reads a Hugging Face <c>tokenizer.json</c> into a <see cref="TokenizerPipeline"/>. A component type
/// this reader does not implement is refused with an error naming it, never skipped.
/// </summary>
internal static class TokenizerJson
{
    public static TokenizerPipeline Read(string path)
    {
        using var document = JsonDocument.Parse(File.ReadAllBytes(path));
        var root = document.RootElement;
        try
        {
            var added = root.TryGetProperty("added_tokens", out var tokens) && tokens.ValueKind == JsonValueKind.Array
                ? tokens.EnumerateArray().Select(ReadAddedToken).ToList()
                : [];
            var normalizer = Normalizer(Optional(root, "normalizer"));
            return new TokenizerPipeline(
                normalizer,
                PreTokenizer(Optional(root, "pre_tokenizer")),
                Model(root.GetProperty("model")),
                PostProcessor(Optional(root, "post_processor"), added),
                Decoder(Optional(root, "decoder")),
                added);
        }
        catch (Exception e) when (e is KeyNotFoundException or InvalidOperationException or FormatException or NotSupportedException or InvalidDataException or ArgumentException)
        {
            throw new TokenizerFileException(path, e.Message, e);
        }
    }

    /// <summary>
    /// GPT-2's pipeline over a vocab.json + merges.txt pair (what transformers' GPT2TokenizerFast builds from
    /// them): the byte-level pre-tokenizer with GPT-2's regex, BPE, the byte-level decoder, and
    /// <c>&lt;|endoftext|&gt;</c> as a special token when the vocabulary has it. Microsoft.ML.Tokenizers'
    /// CodeGenTokenizer is not used here: it adds CodeGen's whitespace-run tokens, which GPT-2 does not have.
    /// </summary>
    public static TokenizerPipeline ReadByteLevelFiles(string vocabularyPath, string mergesPath)
    {
        try
        {
            var vocabulary = JsonSerializer.Deserialize<Dictionary<string, int>>(File.ReadAllBytes(vocabularyPath))
                ?? throw new InvalidDataException("the vocabulary is null.");
            var merges = File.ReadLines(mergesPath)
                .Where(line => line.Length > 0 && !line.StartsWith("#version", StringComparison.Ordinal))
                .Select(line =>
                {
                    var space = line.IndexOf(' ', 1);
                    if (space < 0) throw new InvalidDataException($"{mergesPath}: merge '{line}' is not two tokens separated by a space.");
                    return (line[..space], line[(space + 1)..]);
                }).ToList();
            var added = vocabulary.TryGetValue("<|endoftext|>", out var eos) ? new List<AddedToken> { new(eos, "<|endoftext|>", true, false) } : [];
            return new TokenizerPipeline(null, new ByteLevelPreTokenizer(addPrefixSpace: false, useRegex: true),
                new BpeModel(vocabulary, merges, null, null, null, false, false, false), null, new ByteLevelDecoder(), added);
        }
        catch (Exception e) when (e is JsonException or InvalidDataException)
        {
            throw new TokenizerFileException(vocabularyPath, e.Message, e);
        }
    }

    /// <summary>
    /// BERT's pipeline over a vocab.txt (one token a line, id = line number), as transformers' BertTokenizerFast
    /// builds it: BertNormalizer (lower-casing and accent stripping when <paramref name="lowercase"/>), the BERT
    /// pre-tokenizer, WordPiece, <c>[CLS] … [SEP]</c>. Microsoft.ML.Tokenizers' BertTokenizer is not used: it
    /// joins words across a tab ("tabs\tand" → tabs ##san ##d) where BERT splits them.
    /// </summary>
    public static TokenizerPipeline ReadWordPieceVocabulary(string vocabularyPath, bool lowercase)
    {
        var vocabulary = new Dictionary<string, int>(StringComparer.Ordinal);
        var id = 0;
        foreach (var line in File.ReadLines(vocabularyPath)) vocabulary.TryAdd(line.TrimEnd('\r'), id++);
        int Special(string token) => vocabulary.TryGetValue(token, out var found) ? found
            : throw new TokenizerFileException(vocabularyPath, $"the vocabulary has no {token}.");
        var added = new[] { "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]" }.Where(vocabulary.ContainsKey)
            .Select(t => new AddedToken(vocabulary[t], t, Special: true, Normalized: false)).ToList();
        return new TokenizerPipeline(new BertNormalizer(true, true, null, lowercase), new BertPreTokenizer(),
            new WordPieceModel(vocabulary, "[UNK]", "##", 100), new TemplatePostProcessor([Special("[CLS]")], [Special("[SEP]")]),
            new WordPieceDecoder("##", cleanup: true), added);
    }

    private static AddedToken ReadAddedToken(JsonElement e) => new(
        e.GetProperty("id").GetInt32(), e.GetProperty("content").GetString()!, Bool(e, "special"), Bool(e, "normalized", true),
        Bool(e, "single_word"), Bool(e, "lstrip"), Bool(e, "rstrip"));

    private static JsonElement? Optional(JsonElement e, string name) =>
        e.TryGetProperty(name, out var value) && value.ValueKind != JsonValueKind.Null ? value : null;

    private static bool Bool(JsonElement e, string name, bool fallback = false) =>
        e.TryGetProperty(name, out var value) && value.ValueKind is JsonValueKind.True or JsonValueKind.False ? value.GetBoolean() : fallback;

    private static string? String(JsonElement e, string name) =>
        e.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.String ? value.GetString() : null;

    private static string Type(JsonElement e, string component) =>
        String(e, "type") ?? throw new InvalidDataException($"a {component} without a \"type\".");

    /// <summary><c>{"String": "..."}</c> as a literal, <c>{"Regex": "..."}</c> as a regex.</summary>
    private static Regex Pattern(JsonElement e)
    {
        if (String(e, "String") is { } literal) return new Regex(Regex.Escape(literal), RegexOptions.CultureInvariant);
        if (String(e, "Regex") is { } regex) return new Regex(regex, RegexOptions.CultureInvariant);
        throw new InvalidDataException("a pattern is neither {\"String\": ...} nor {\"Regex\": ...}.");
    }

    private static INormalizer? Normalizer(JsonElement? element)
    {
        if (element is not { } e) return null;
        return Type(e, "normalizer") switch
        {
            "Sequence" => new SequenceNormalizer(e.GetProperty("normalizers").EnumerateArray().Select(n => Normalizer(n)!).ToList()),
            "NFC" => new UnicodeNormalizer(NormalizationForm.FormC),
            "NFD" => new UnicodeNormalizer(NormalizationForm.FormD),
            "NFKC" => new UnicodeNormalizer(NormalizationForm.FormKC),
            "NFKD" => new UnicodeNormalizer(NormalizationForm.FormKD),
            "Lowercase" => new LowercaseNormalizer(),
            "StripAccents" => new StripAccentsNormalizer(),
            "Strip" => new StripNormalizer(Bool(e, "strip_left", true), Bool(e, "strip_right", true)),
            "Prepend" => new PrependNormalizer(String(e, "prepend") ?? ""),
            "Replace" => new ReplaceNormalizer(Pattern(e.GetProperty("pattern")), String(e, "content") ?? ""),
            "BertNormalizer" => new BertNormalizer(Bool(e, "clean_text", true), Bool(e, "handle_chinese_chars", true),
                e.TryGetProperty("strip_accents", out var strip) && strip.ValueKind is JsonValueKind.True or JsonValueKind.False ? strip.GetBoolean() : null,
                Bool(e, "lowercase", true)),
            "Precompiled" => PrecompiledNormalizer.FromBase64(String(e, "precompiled_charsmap") ?? ""),
            var type => throw new NotSupportedException($"normalizer type '{type}' is not supported."),
        };
    }

    private static IPreTokenizer? PreTokenizer(JsonElement? element)
    {
        if (element is not { } e) return null;
        return Type(e, "pre_tokenizer") switch
        {
            "Sequence" => new SequencePreTokenizer(e.GetProperty("pretokenizers").EnumerateArray().Select(p => PreTokenizer(p)!).ToList()),
            "ByteLevel" => new ByteLevelPreTokenizer(Bool(e, "add_prefix_space", true), Bool(e, "use_regex", true)),
            "Split" => new SplitPreTokenizer(Pattern(e.GetProperty("pattern")), Splitter.ParseBehavior(String(e, "behavior") ?? "Isolated"), Bool(e, "invert")),
            "Whitespace" => new WhitespacePreTokenizer(),
            "WhitespaceSplit" => new WhitespaceSplitPreTokenizer(),
            "BertPreTokenizer" => new BertPreTokenizer(),
            "Punctuation" => new PunctuationPreTokenizer(Splitter.ParseBehavior(String(e, "behavior") ?? "Isolated")),
            "Digits" => new DigitsPreTokenizer(Bool(e, "individual_digits")),
            "Metaspace" => new MetaspacePreTokenizer(String(e, "replacement") ?? "▁", MetaspacePrependScheme(e), Bool(e, "split", true)),
            var type => throw new NotSupportedException($"pre_tokenizer type '{type}' is not supported."),
        };
    }

    /// <summary><c>prepend_scheme</c>, or the older <c>add_prefix_space</c> (true meant always).</summary>
    private static string MetaspacePrependScheme(JsonElement e) =>
        String(e, "prepend_scheme") ?? (Bool(e, "add_prefix_space", true) ? "always" : "never");

    private static ITokenModel Model(JsonElement e)
    {
        var type = String(e, "type") ?? (e.TryGetProperty("merges", out _) ? "BPE" : e.TryGetProperty("vocab", out var v) && v.ValueKind == JsonValueKind.Array ? "Unigram" : "WordPiece");
        switch (type)
        {
            case "BPE":
                if (e.TryGetProperty("dropout", out var dropout) && dropout.ValueKind == JsonValueKind.Number && dropout.GetDouble() > 0)
                    throw new NotSupportedException($"BPE dropout {dropout.GetDouble()} is a training-time regularizer; this tokenizer encodes deterministically, so set it to null.");
                return new BpeModel(Vocabulary(e), Merges(e.GetProperty("merges")), String(e, "unk_token"), String(e, "continuing_subword_prefix"),
                    String(e, "end_of_word_suffix"), Bool(e, "fuse_unk"), Bool(e, "byte_fallback"), Bool(e, "ignore_merges"));
            case "WordPiece":
                return new WordPieceModel(Vocabulary(e), String(e, "unk_token") ?? "[UNK]", String(e, "continuing_subword_prefix") ?? "##",
                    e.TryGetProperty("max_input_chars_per_word", out var max) ? max.GetInt32() : 100);
            case "Unigram":
                var pieces = e.GetProperty("vocab").EnumerateArray().Select(p => (p[0].GetString()!, p[1].GetDouble())).ToList();
                int? unknown = e.TryGetProperty("unk_id", out var unk) && unk.ValueKind == JsonValueKind.Number ? unk.GetInt32() : null;
                return new UnigramModel(pieces, unknown, Bool(e, "byte_fallback"));
            case "WordLevel":
                return new WordLevelModel(Vocabulary(e), String(e, "unk_token"));
            default:
                throw new NotSupportedException($"model type '{type}' is not supported (BPE, WordPiece, Unigram, WordLevel are).");
        }
    }

    private static Dictionary<string, int> Vocabulary(JsonElement model) =>
        model.GetProperty("vocab").EnumerateObject().ToDictionary(p => p.Name, p => p.Value.GetInt32(), StringComparer.Ordinal);

    /// <summary>Merges as <c>"a b"</c> strings (older files) or <c>["a", "b"]</c> pairs (tokenizers ≥ 0.20).</summary>
    private static List<(string, string)> Merges(JsonElement merges) =>
        merges.EnumerateArray().Select(m =>
        {
            if (m.ValueKind == JsonValueKind.Array) return (m[0].GetString()!, m[1].GetString()!);
            var text = m.GetString()!;
            var space = text.IndexOf(' ', 1);
            if (space < 0) throw new InvalidDataException($"merge '{text}' is not two tokens separated by a space.");
            return (text[..space], text[(space + 1)..]);
        }).ToList();

    private static IPostProcessor? PostProcessor(JsonElement? element, IReadOnlyList<AddedToken> added)
    {
        if (element is not { } e) return null;
        switch (Type(e, "post_processor"))
        {
            case "Sequence":
                return new SequencePostProcessor(e.GetProperty("processors").EnumerateArray().Select(p => PostProcessor(p, added)!).ToList());
            case "ByteLevel":
                return new IdentityPostProcessor();
            case "BertProcessing":
            case "RobertaProcessing":
                var cls = e.GetProperty("cls")[1].GetInt32();
                var sep = e.GetProperty("sep")[1].GetInt32();
                return new TemplatePostProcessor([cls], [sep]);
            case "TemplateProcessing":
                return Template(e);
            case var type:
                throw new NotSupportedException($"post_processor type '{type}' is not supported.");
        }
    }

    /// <summary>The <c>single</c> template: special tokens before and after the one <c>Sequence</c> item.</summary>
    private static TemplatePostProcessor Template(JsonElement e)
    {
        var specials = e.GetProperty("special_tokens");
        List<int> before = [], after = [];
        var seenSequence = false;
        foreach (var item in e.GetProperty("single").EnumerateArray())
        {
            if (item.TryGetProperty("Sequence", out _))
            {
                if (seenSequence) throw new NotSupportedException("a single-sequence template with the sequence twice.");
                seenSequence = true;
                continue;
            }
            var name = item.GetProperty("SpecialToken").GetProperty("id").GetString()!;
            var ids = specials.GetProperty(name).GetProperty("ids").EnumerateArray().Select(i => i.GetInt32());
            (seenSequence ? after : before).AddRange(ids);
        }
        return new TemplatePostProcessor(before, after);
    }

    private static IDecoder? Decoder(JsonElement? element)
    {
        if (element is not { } e) return null;
        return Type(e, "decoder") switch
        {
            "Sequence" => new SequenceDecoder(e.GetProperty("decoders").EnumerateArray().Select(d => Decoder(d)!).ToList()),
            "ByteLevel" => new ByteLevelDecoder(),
            "Metaspace" => new MetaspaceDecoder(String(e, "replacement") ?? "▁", MetaspacePrependScheme(e) != "never"),
            "WordPiece" => new WordPieceDecoder(String(e, "prefix") ?? "##", Bool(e, "cleanup", true)),
            "BPEDecoder" => new BpeSuffixDecoder(String(e, "suffix") ?? "</w>"),
            "Replace" => new ReplaceDecoder(Pattern(e.GetProperty("pattern")), String(e, "content") ?? ""),
            "ByteFallback" => new ByteFallbackDecoder(),
            "Fuse" => new FuseDecoder(),
            "Strip" => new StripDecoder((String(e, "content") ?? " ")[0], e.GetProperty("start").GetInt32(), e.GetProperty("stop").GetInt32()),
            var type => throw new NotSupportedException($"decoder type '{type}' is not supported."),
        };
    }
}
