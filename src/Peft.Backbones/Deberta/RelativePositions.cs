// Relative positions of DeBERTa and DeBERTa-v2, following transformers' build_relative_position and
// make_log_bucket_position (models/deberta_v2/modeling_deberta_v2.py).
using TorchSharp;
using static TorchSharp.torch;

namespace Peft.Backbones.Deberta;

/// <summary>Relative positions query − key, optionally in DeBERTa-v2's log buckets.</summary>
public static class RelativePositions
{
    /// <summary>
    /// Positions <c>q − k</c> for <paramref name="queryLength"/> queries and <paramref name="keyLength"/>
    /// keys, shaped (1, Q, K). With <paramref name="bucketSize"/> and <paramref name="maxPosition"/>
    /// both positive, distances beyond half the bucket size are mapped to logarithmic buckets.
    /// </summary>
    public static Tensor Build(long queryLength, long keyLength, Device device, int bucketSize = -1, int maxPosition = -1)
    {
        using var scope = torch.NewDisposeScope();
        var queries = torch.arange(queryLength, ScalarType.Int64, device);
        var keys = torch.arange(keyLength, ScalarType.Int64, device);
        var relative = queries.unsqueeze(1) - keys.unsqueeze(0);                       // (Q, K)
        if (bucketSize > 0 && maxPosition > 0) relative = LogBuckets(relative, bucketSize, maxPosition).to(ScalarType.Int64);
        return relative.unsqueeze(0).MoveToOuterDisposeScope();
    }

    /// <summary>DeBERTa-v2's log-bucketed positions, computed in float32 as the reference does.</summary>
    public static Tensor LogBuckets(Tensor relative, int bucketSize, int maxPosition)
    {
        using var scope = torch.NewDisposeScope();
        var sign = relative.sign();
        var mid = bucketSize / 2;
        var near = relative.lt(mid).logical_and(relative.gt(-mid));
        var absolute = torch.where(near, torch.full_like(relative, mid - 1), relative.abs());
        var logRange = torch.tensor((float)((maxPosition - 1) / (double)mid)).log();
        var logPosition = (absolute.to(ScalarType.Float32) / mid).log() / logRange * (mid - 1);
        logPosition = logPosition.ceil() + mid;
        var bucketed = torch.where(absolute.le(mid), relative.to(ScalarType.Float32), logPosition * sign.to(ScalarType.Float32));
        return bucketed.MoveToOuterDisposeScope();
    }
}
