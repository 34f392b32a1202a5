namespace Peft.Tokenizers.Tests;

/// <summary>
/// Hugging Face tokenizers itself (the Rust library, through Tokenizers.DotNet) on the same tokenizer.json:
/// encoding adds special tokens, decoding skips them, as <c>tokenizer(text)</c> and <c>decode(ids, skip_special_tokens=True)</c>.
/// </summary>
internal static class Reference
{
    // One native tokenizer per file for the test run (loading GPT-2's 50k merges takes a while).
    private static readonly System.Collections.Concurrent.ConcurrentDictionary<string, global::Tokenizers.DotNet.Tokenizer> Loaded = new();

    private static global::Tokenizers.DotNet.Tokenizer For(string directory) =>
        Loaded.GetOrAdd(Path.Combine(directory, "tokenizer.json") + File.GetLastWriteTimeUtc(Path.Combine(directory, "tokenizer.json")).Ticks,
            _ => new global::Tokenizers.DotNet.Tokenizer(Path.Combine(directory, "tokenizer.json")));

    public static int[] Encode(string directory, string text) => [.. For(directory).Encode(text).Select(i => (int)i)];

    public static string Decode(string directory, IEnumerable<int> ids) => For(directory).Decode([.. ids.Select(i => (uint)i)]);

    /// <summary>Texts that reach the corners of the pipelines: contractions, digits, runs of spaces, newlines, accents, CJK, emoji, added tokens.</summary>
    public static readonly string[] Corpus =
    [
        "Hello world",
        "hello world",
        " Hello, world!  How's it going?",
        "I'm sure they'll say we've done it; you'd THINK so.",
        "Numbers: 1234567 and 3.14159, 2024-12-01.",
        "tabs\tand\nnewlines\r\n\n  indented   spaces   ",
        "Café naïve résumé Ünïcödé façade",
        "日本語のテキストと中文",
        "emoji 🙂🚀 and symbols ©®™ → ∑",
        "hello<|endoftext|>world",
        "",
        "   ",
        "a",
        "The quick brown fox jumps over the lazy dog.",
        "don't DON'T won't",
    ];
}
