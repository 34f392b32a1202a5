using System.Text.Json.Nodes;

namespace Peft.Tokenizers.Tests;

/// <summary>
/// tokenizer.json files laid out as Hugging Face tokenizers writes them for each family, written to a temporary
/// directory. The small vocabularies are made by hand so that the expected ids follow from the algorithm's definition.
/// </summary>
internal sealed class TokenizerFiles : IDisposable
{
    public string Directory { get; } = Path.Combine(Path.GetTempPath(), "peft-tokenizers-" + Guid.NewGuid().ToString("N"));

    public TokenizerFiles() => System.IO.Directory.CreateDirectory(Directory);

    public void Dispose()
    {
        if (System.IO.Directory.Exists(Directory)) System.IO.Directory.Delete(Directory, recursive: true);
    }

    /// <summary>Writes <paramref name="json"/> as <c>name/tokenizer.json</c> (and a tokenizer_config.json when given); returns the folder.</summary>
    public string Write(string name, JsonObject json, JsonObject? config = null)
    {
        var folder = Path.Combine(Directory, name);
        System.IO.Directory.CreateDirectory(folder);
        File.WriteAllText(Path.Combine(folder, "tokenizer.json"), json.ToJsonString());
        if (config is not null) File.WriteAllText(Path.Combine(folder, "tokenizer_config.json"), config.ToJsonString());
        return folder;
    }

    public static JsonObject Added(int id, string content, bool special = true, bool normalized = false) => new()
    {
        ["id"] = id, ["content"] = content, ["single_word"] = false, ["lstrip"] = false, ["rstrip"] = false, ["normalized"] = normalized, ["special"] = special,
    };

    public static JsonObject Tokenizer(JsonNode? normalizer, JsonNode? preTokenizer, JsonObject model, JsonNode? postProcessor, JsonNode? decoder, params JsonObject[] added) => new()
    {
        ["version"] = "1.0",
        ["truncation"] = null,
        ["padding"] = null,
        ["added_tokens"] = new JsonArray([.. added]),
        ["normalizer"] = normalizer,
        ["pre_tokenizer"] = preTokenizer,
        ["post_processor"] = postProcessor,
        ["decoder"] = decoder,
        ["model"] = model,
    };

    public static JsonObject Bpe(IEnumerable<KeyValuePair<string, int>> vocabulary, IEnumerable<(string, string)> merges, string? unk = null, bool byteFallback = false,
        bool fuseUnk = false, bool ignoreMerges = false) => new()
    {
        ["type"] = "BPE", ["dropout"] = null, ["unk_token"] = unk, ["continuing_subword_prefix"] = null, ["end_of_word_suffix"] = null,
        ["fuse_unk"] = fuseUnk, ["byte_fallback"] = byteFallback, ["ignore_merges"] = ignoreMerges,
        ["vocab"] = new JsonObject(vocabulary.Select(p => KeyValuePair.Create(p.Key, (JsonNode?)p.Value))),
        ["merges"] = new JsonArray([.. merges.Select(m => (JsonNode)new JsonArray(m.Item1, m.Item2))]),
    };

    public static JsonObject Type(string type, params (string Key, JsonNode? Value)[] fields)
    {
        var node = new JsonObject { ["type"] = type };
        foreach (var (key, value) in fields) node[key] = value;
        return node;
    }

    public static JsonObject Sequence(string key, params JsonNode[] items) => Type("Sequence", (key, new JsonArray(items)));

    public static JsonObject Regex(string pattern) => new() { ["Regex"] = pattern };

    public static JsonObject Literal(string text) => new() { ["String"] = text };

    /// <summary>A TemplateProcessing with <paramref name="before"/> ahead of the sequence and <paramref name="after"/> behind it.</summary>
    public static JsonObject Template((string Token, int Id)[] before, (string Token, int Id)[] after)
    {
        var single = new JsonArray();
        foreach (var (token, _) in before) single.Add(new JsonObject { ["SpecialToken"] = new JsonObject { ["id"] = token, ["type_id"] = 0 } });
        single.Add(new JsonObject { ["Sequence"] = new JsonObject { ["id"] = "A", ["type_id"] = 0 } });
        foreach (var (token, _) in after) single.Add(new JsonObject { ["SpecialToken"] = new JsonObject { ["id"] = token, ["type_id"] = 0 } });
        var specials = new JsonObject();
        foreach (var (token, id) in before.Concat(after)) specials[token] = new JsonObject { ["id"] = token, ["ids"] = new JsonArray(id), ["tokens"] = new JsonArray(token) };
        return Type("TemplateProcessing", ("single", single), ("pair", new JsonArray()), ("special_tokens", specials));
    }

    /// <summary>GPT-2's tokenizer.json (as transformers' GPT2TokenizerFast writes it) over the real vocabulary.</summary>
    public static JsonObject Gpt2() => Tokenizer(
        null,
        Type("ByteLevel", ("add_prefix_space", false), ("trim_offsets", true), ("use_regex", true)),
        Bpe(Gpt2Vocabulary.Vocabulary, Gpt2Vocabulary.Merges),
        Type("ByteLevel", ("add_prefix_space", true), ("trim_offsets", false), ("use_regex", true)),
        Type("ByteLevel", ("add_prefix_space", true), ("trim_offsets", true), ("use_regex", true)),
        Added(Gpt2Vocabulary.EndOfText, "<|endoftext|>"));

    /// <summary>Llama-3's and Qwen2's pipeline: a Split on their regex, byte-level without a regex, ignore_merges (Llama-3), NFC (Qwen2).</summary>
    public static JsonObject SplitThenByteLevel(string pattern, bool nfc, bool ignoreMerges) => Tokenizer(
        nfc ? Type("NFC") : null,
        Sequence("pretokenizers",
            Type("Split", ("pattern", Regex(pattern)), ("behavior", "Isolated"), ("invert", false)),
            Type("ByteLevel", ("add_prefix_space", false), ("trim_offsets", true), ("use_regex", false))),
        Bpe(Gpt2Vocabulary.Vocabulary, Gpt2Vocabulary.Merges, ignoreMerges: ignoreMerges),
        Type("ByteLevel", ("add_prefix_space", true), ("trim_offsets", false), ("use_regex", true)),
        Type("ByteLevel", ("add_prefix_space", true), ("trim_offsets", true), ("use_regex", true)),
        Added(Gpt2Vocabulary.EndOfText, "<|endoftext|>"));

    public const string Llama3Pattern = @"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

    public const string Qwen2Pattern = @"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
}
