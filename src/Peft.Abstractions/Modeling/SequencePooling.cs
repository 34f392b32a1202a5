using TorchSharp;
using static TorchSharp.torch;

namespace Peft.Modeling;

/// <summary>How decoder-only models pick the token that classifies a sequence (transformers' rule).</summary>
public static class SequencePooling
{
    /// <summary>
    /// Each row's logits at its rightmost token that is not padding (which also handles left padding),
    /// or at the last position when there are no ids or no pad token.
    /// </summary>
    /// <param name="logits">Per-token logits, (B, T, labels).</param>
    /// <param name="inputIds">The ids, (B, T), or null when the model ran on embeddings.</param>
    /// <param name="padTokenId">The config's pad token id.</param>
    /// <param name="modelName">For the error message.</param>
    /// <returns>(B, labels).</returns>
    /// <exception cref="InvalidOperationException">No pad token id and more than one sequence.</exception>
    public static Tensor LastToken(Tensor logits, Tensor? inputIds, long? padTokenId, string modelName)
    {
        using var scope = torch.NewDisposeScope();
        var batch = logits.shape[0];
        if (padTokenId is null && batch != 1)
        {
            throw new InvalidOperationException(
                $"{modelName} cannot classify batches of more than one sequence without pad_token_id in config.json.");
        }
        Tensor last;
        if (inputIds is not null && padTokenId is { } pad)
        {
            var positions = torch.arange(inputIds.shape[^1], device: inputIds.device);
            last = (positions * inputIds.ne(pad).to(ScalarType.Int64)).argmax(-1);
        }
        else
        {
            last = torch.full(batch, logits.shape[1] - 1, ScalarType.Int64, logits.device);
        }
        return logits[torch.arange(batch, device: logits.device), last].MoveToOuterDisposeScope();
    }
}
