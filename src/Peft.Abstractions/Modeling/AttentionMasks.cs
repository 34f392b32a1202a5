using TorchSharp;
using static TorchSharp.torch;

namespace Peft.Modeling;

/// <summary>Additive attention masks as transformers builds them (0 where attending, the dtype's minimum elsewhere).</summary>
public static class AttentionMasks
{
    /// <summary>
    /// A causal mask over <paramref name="queryLength"/> new positions following <paramref name="pastLength"/>
    /// cached ones, combined with the padding mask, shaped (batch, 1, query, past + query).
    /// </summary>
    /// <param name="paddingMask">(batch, past + query) with 1 for tokens to attend to, or null.</param>
    /// <param name="batch">Batch size.</param>
    /// <param name="queryLength">New positions.</param>
    /// <param name="pastLength">Cached (or prefix) positions before them.</param>
    /// <param name="dtype">The scores' dtype.</param>
    /// <param name="device">The scores' device.</param>
    /// <param name="window">When set, a query attends only to the last <c>window</c> keys (sliding-window attention).</param>
    public static Tensor Causal(Tensor? paddingMask, long batch, long queryLength, long pastLength, ScalarType dtype, Device device, long? window = null)
    {
        using var scope = torch.NewDisposeScope();
        var keyLength = pastLength + queryLength;
        var queries = torch.arange(pastLength, keyLength, device: device).unsqueeze(1);   // (Q, 1)
        var keys = torch.arange(keyLength, device: device).unsqueeze(0);                  // (1, K)
        var allowed = keys.le(queries);                                                   // (Q, K)
        if (window is { } w) allowed = allowed.logical_and(keys.gt(queries - w));
        allowed = allowed.unsqueeze(0).unsqueeze(0).expand(batch, 1, queryLength, keyLength);
        if (paddingMask is not null)
        {
            allowed = allowed.logical_and(paddingMask.to(ScalarType.Bool, device)[.., TensorIndex.None, TensorIndex.None, ..]);
        }
        return ToAdditive(allowed, dtype).MoveToOuterDisposeScope();
    }

    /// <summary>A bidirectional padding mask (batch, 1, 1, keys) for encoders, or null when there is no padding mask.</summary>
    public static Tensor? Padding(Tensor? paddingMask, ScalarType dtype)
    {
        if (paddingMask is null) return null;
        using var scope = torch.NewDisposeScope();
        var allowed = paddingMask.to(ScalarType.Bool)[.., TensorIndex.None, TensorIndex.None, ..];
        return ToAdditive(allowed, dtype).MoveToOuterDisposeScope();
    }

    /// <summary>Turns a boolean "may attend" mask into an additive one.</summary>
    public static Tensor ToAdditive(Tensor allowed, ScalarType dtype)
    {
        var minimum = torch.finfo(dtype).min;
        return torch.zeros(allowed.shape, dtype, allowed.device).masked_fill(allowed.logical_not(), minimum);
    }
}
