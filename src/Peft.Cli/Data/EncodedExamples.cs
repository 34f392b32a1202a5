using Peft.Modeling;
using Peft.Pretrained;
using TorchSharp;

namespace Peft.Cli.Data;

/// <summary>A text tokenized once, with its label.</summary>
/// <param name="Ids">Token ids including [CLS] and [SEP].</param>
/// <param name="Label">Label index.</param>
public sealed record EncodedExample(int[] Ids, int Label);

/// <summary>Tokenizes datasets once and pads batches for the model.</summary>
public static class EncodedExamples
{
    /// <summary>Every example tokenized (truncated to the encoder's maximum length).</summary>
    public static IReadOnlyList<EncodedExample> Encode(WordPieceEncoder encoder, IEnumerable<LabeledText> examples) =>
        examples.Select(e => new EncodedExample(encoder.Encode(e.Text).ToArray(), e.Label)).ToList();

    /// <summary>Right-pads a batch to its longest example: ids, attention mask and labels.</summary>
    public static ModelInputs Collate(IReadOnlyList<EncodedExample> batch, long padId)
    {
        var length = batch.Max(b => b.Ids.Length);
        var ids = new long[batch.Count * length];
        var mask = new long[batch.Count * length];
        Array.Fill(ids, padId);
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
