using TorchSharp;

namespace Peft.Tokenizers;

/// <summary>A padded batch: both tensors are int64 of shape (batch, length), on the CPU.</summary>
/// <param name="InputIds">Token ids, padded with the pad token on the tokenizer's padding side.</param>
/// <param name="AttentionMask">1 for real tokens, 0 for padding.</param>
/// <param name="Ids">Each text's ids before padding.</param>
public sealed record TokenizedBatch(torch.Tensor InputIds, torch.Tensor AttentionMask, IReadOnlyList<IReadOnlyList<int>> Ids) : IDisposable
{
    /// <summary>Disposes both tensors.</summary>
    public void Dispose()
    {
        InputIds.Dispose();
        AttentionMask.Dispose();
    }
}
