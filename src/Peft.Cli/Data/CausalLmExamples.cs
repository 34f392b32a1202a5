using Microsoft.ML.Tokenizers;
using Peft.Modeling;
using TorchSharp;

namespace Peft.Cli.Data;

/// <summary>A prompt and its completion tokenized once; only the completion is learned.</summary>
/// <param name="Ids">Prompt ids followed by completion ids.</param>
/// <param name="PromptLength">How many leading ids are the prompt (their labels are ignored).</param>
public sealed record CausalExample(int[] Ids, int PromptLength);

/// <summary>Byte-level BPE tokenization (GPT-2's vocab.json + merges.txt) and batching for causal-LM fine-tuning.</summary>
public static class CausalLmExamples
{
    /// <summary>The byte-level BPE tokenizer of a model directory.</summary>
    /// <exception cref="FileNotFoundException">The directory lacks vocab.json or merges.txt.</exception>
    public static Tokenizer LoadTokenizer(string modelDirectory)
    {
        var vocabulary = Path.Combine(modelDirectory, "vocab.json");
        var merges = Path.Combine(modelDirectory, "merges.txt");
        foreach (var file in new[] { vocabulary, merges })
        {
            if (!File.Exists(file)) throw new FileNotFoundException($"{file}: not found; causal-LM fine-tuning tokenizes with a byte-level BPE vocabulary (vocab.json + merges.txt).", file);
        }
        using var vocabularyStream = File.OpenRead(vocabulary);
        using var mergesStream = File.OpenRead(merges);
        return CodeGenTokenizer.Create(vocabularyStream, mergesStream);
    }

    /// <summary>Tokenizes each pair, truncating the prompt first so the completion survives <paramref name="maxLength"/>.</summary>
    public static IReadOnlyList<CausalExample> Encode(Tokenizer tokenizer, IEnumerable<(string Prompt, string Completion)> pairs, int maxLength) =>
        pairs.Select(pair =>
        {
            var prompt = tokenizer.EncodeToIds(pair.Prompt);
            var completion = tokenizer.EncodeToIds(pair.Completion).Take(maxLength - 1).ToArray();
            var keptPrompt = prompt.Skip(Math.Max(0, prompt.Count + completion.Length - maxLength)).ToArray();
            return new CausalExample([.. keptPrompt, .. completion], keptPrompt.Length);
        }).ToList();

    /// <summary>Right-pads a batch; labels are the ids on completion tokens and -100 on prompt and padding.</summary>
    public static ModelInputs Collate(IReadOnlyList<CausalExample> batch, long padId)
    {
        var length = batch.Max(b => b.Ids.Length);
        var ids = new long[batch.Count * length];
        var mask = new long[batch.Count * length];
        var labels = new long[batch.Count * length];
        Array.Fill(ids, padId);
        Array.Fill(labels, Losses.IgnoreIndex);
        for (int row = 0; row < batch.Count; row++)
        {
            var example = batch[row];
            for (int t = 0; t < example.Ids.Length; t++)
            {
                ids[row * length + t] = example.Ids[t];
                mask[row * length + t] = 1;
                if (t >= example.PromptLength) labels[row * length + t] = example.Ids[t];
            }
        }
        return new ModelInputs
        {
            InputIds = torch.tensor(ids, [batch.Count, length]),
            AttentionMask = torch.tensor(mask, [batch.Count, length]),
            Labels = torch.tensor(labels, [batch.Count, length]),
        };
    }
}
