using Peft.Modeling;
using TorchSharp;

namespace Peft.Training;

/// <summary>A prompt and its completion tokenized once; only the completion is learned.</summary>
/// <param name="Ids">Prompt ids followed by completion ids.</param>
/// <param name="PromptLength">How many leading ids are the prompt (their labels are ignored).</param>
public sealed record CausalLmExample(int[] Ids, int PromptLength);

/// <summary>
/// Causal-LM batches for prompt + completion fine-tuning (TRL's completion-only collator): right-padded ids
/// and mask, labels equal to the ids on completion tokens and <see cref="Losses.IgnoreIndex"/> (−100) on prompt
/// and padding, so the loss counts completion tokens only. The model shifts labels itself.
/// </summary>
/// <param name="padTokenId">The id padding is filled with (GPT-2 has none: its EOS is the usual choice).</param>
public sealed class CausalLmCollator(long padTokenId)
{
    /// <summary>
    /// Tokenizes each pair with <paramref name="encode"/> (no special tokens wanted: the pair is one text), truncating the
    /// prompt from the left first so the completion survives <paramref name="maxLength"/>; a completion longer than
    /// <paramref name="maxLength"/> − 1 is cut at its end.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="maxLength"/> is below 2.</exception>
    public static IReadOnlyList<CausalLmExample> Encode(Func<string, IReadOnlyList<int>> encode, IEnumerable<(string Prompt, string Completion)> pairs, int maxLength)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(maxLength, 2);
        return pairs.Select(pair =>
        {
            var prompt = encode(pair.Prompt);
            var completion = encode(pair.Completion).Take(maxLength - 1).ToArray();
            var keptPrompt = prompt.Skip(Math.Max(0, prompt.Count + completion.Length - maxLength)).ToArray();
            return new CausalLmExample([.. keptPrompt, .. completion], keptPrompt.Length);
        }).ToList();
    }

    /// <summary>Pads a batch to its longest example; labels are −100 on prompt and padding.</summary>
    /// <exception cref="ArgumentException">The batch is empty.</exception>
    public ModelInputs Collate(IReadOnlyList<CausalLmExample> batch)
    {
        if (batch.Count == 0) throw new ArgumentException("Cannot collate an empty batch.", nameof(batch));
        var length = batch.Max(b => b.Ids.Length);
        var ids = new long[batch.Count * length];
        var mask = new long[batch.Count * length];
        var labels = new long[batch.Count * length];
        Array.Fill(ids, padTokenId);
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
