using Peft.Modeling;
using TorchSharp;

namespace Peft.Training;

/// <summary>A text tokenized once, with its class.</summary>
/// <param name="Ids">Token ids, special tokens included (BERT's [CLS] … [SEP]).</param>
/// <param name="Label">Class index.</param>
public sealed record ClassificationExample(int[] Ids, int Label);

/// <summary>
/// Sequence classification batches (transformers' <c>DataCollatorWithPadding</c>): right-padded ids, the
/// attention mask, and one label per example.
/// </summary>
/// <param name="padTokenId">The id padding is filled with.</param>
public sealed class ClassificationCollator(long padTokenId)
{
    /// <summary>Tokenizes each text once with <paramref name="encode"/> (which adds special tokens and truncates as it sees fit).</summary>
    public static IReadOnlyList<ClassificationExample> Encode(Func<string, IReadOnlyList<int>> encode, IEnumerable<(string Text, int Label)> examples) =>
        examples.Select(e => new ClassificationExample([.. encode(e.Text)], e.Label)).ToList();

    /// <summary>Pads a batch to its longest example: ids, attention mask and labels (int64).</summary>
    /// <exception cref="ArgumentException">The batch is empty.</exception>
    public ModelInputs Collate(IReadOnlyList<ClassificationExample> batch)
    {
        if (batch.Count == 0) throw new ArgumentException("Cannot collate an empty batch.", nameof(batch));
        var length = batch.Max(b => b.Ids.Length);
        var ids = new long[batch.Count * length];
        var mask = new long[batch.Count * length];
        Array.Fill(ids, padTokenId);
        for (int row = 0; row < batch.Count; row++)
        {
            var example = batch[row].Ids;
            for (int t = 0; t < example.Length; t++)
            {
                ids[row * length + t] = example[t];
                mask[row * length + t] = 1;
            }
        }
        return new ModelInputs
        {
            InputIds = torch.tensor(ids, [batch.Count, length]),
            AttentionMask = torch.tensor(mask, [batch.Count, length]),
            Labels = torch.tensor(batch.Select(b => (long)b.Label).ToArray()),
        };
    }
}
