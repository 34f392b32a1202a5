// Task-vector merging, following peft/utils/merge_utils.py (task arithmetic, TIES, DARE, magnitude pruning).
using TorchSharp;
using static TorchSharp.torch;

namespace Peft.Methods.Lora;

/// <summary>
/// Combines same-shaped tensors from several tasks (LoRA factors or weight deltas), each scaled by its
/// weight: the reference's merge utilities, used by <c>PeftModel.AddWeightedAdapter</c>.
/// </summary>
public static class TaskArithmetic
{
    /// <summary>Σ wᵢ·tᵢ.</summary>
    public static Tensor Sum(IReadOnlyList<Tensor> tasks, IReadOnlyList<double> weights) => Weighted(Stack(tasks), weights).sum(dim: 0);

    /// <summary>Each task pruned to its largest-magnitude <paramref name="density"/> fraction, then Σ wᵢ·tᵢ.</summary>
    public static Tensor MagnitudePrune(IReadOnlyList<Tensor> tasks, IReadOnlyList<double> weights, double density) =>
        Weighted(Stack(tasks.Select(t => PruneByMagnitude(t, density))), weights).sum(dim: 0);

    /// <summary>TIES-merging (Yadav et al., 2023): magnitude pruning, a sign elected per entry, the mean of the weighted values that agree with it.</summary>
    public static Tensor Ties(IReadOnlyList<Tensor> tasks, IReadOnlyList<double> weights, double density, MajoritySignMethod method) =>
        DisjointMean(Stack(tasks.Select(t => PruneByMagnitude(t, density))), weights, method);

    /// <summary>DARE (Yu et al., 2023): each entry kept with probability <paramref name="density"/> and divided by it, then Σ wᵢ·tᵢ.</summary>
    public static Tensor DareLinear(IReadOnlyList<Tensor> tasks, IReadOnlyList<double> weights, double density) =>
        Weighted(Stack(tasks.Select(t => PruneAtRandom(t, density))), weights).sum(dim: 0);

    /// <summary>DARE's random pruning followed by TIES' sign election and disjoint mean.</summary>
    public static Tensor DareTies(IReadOnlyList<Tensor> tasks, IReadOnlyList<double> weights, double density, MajoritySignMethod method) =>
        DisjointMean(Stack(tasks.Select(t => PruneAtRandom(t, density))), weights, method);

    /// <summary>
    /// Keeps the <c>⌊density · numel⌋</c> entries of largest magnitude and zeroes the rest; a density of 1 or more keeps all
    /// (the reference warns, as <see cref="PeftLog"/> does here).
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="density"/> is negative.</exception>
    public static Tensor PruneByMagnitude(Tensor tensor, double density)
    {
        if (KeepsAll(density)) return tensor;
        var k = (long)(density * tensor.numel());
        var mask = torch.zeros_like(tensor).reshape(-1);
        if (k > 0) mask.index_fill_(0, tensor.abs().reshape(-1).topk((int)k).indexes, 1);
        return tensor * mask.reshape(tensor.shape);
    }

    /// <summary>Keeps each entry with probability <paramref name="density"/> (torch's generator) and divides the kept ones by it.</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="density"/> is negative.</exception>
    public static Tensor PruneAtRandom(Tensor tensor, double density)
    {
        if (KeepsAll(density)) return tensor;
        var mask = torch.bernoulli(torch.full_like(tensor, density));
        return tensor * mask / density;
    }

    /// <summary>Per entry, whether a task's sign is the elected one (stacked tasks on dimension 0; a zero never is).</summary>
    public static Tensor MajoritySignMask(Tensor stacked, MajoritySignMethod method)
    {
        var sign = stacked.sign();
        var magnitude = method == MajoritySignMethod.Total ? stacked.sum(dim: 0) : sign.sum(dim: 0);
        var majority = magnitude.ge(0).to(sign.dtype) * 2 - 1;                                // +1 where the sum is ≥ 0, else −1
        return sign.eq(majority);
    }

    private static Tensor DisjointMean(Tensor stacked, IReadOnlyList<double> weights, MajoritySignMethod method)
    {
        // The sign is elected on the pruned values before weighting, as the reference does.
        var mask = MajoritySignMask(stacked, method);
        var kept = (Weighted(stacked, weights) * mask).sum(dim: 0);
        return kept / mask.sum(dim: 0).clamp_min(1).to(kept.dtype);
    }

    private static bool KeepsAll(double density)
    {
        if (density < 0) throw new ArgumentOutOfRangeException(nameof(density), density, "density must be at least 0.");
        if (density < 1) return false;
        PeftLog.Warn($"The density {density} is greater than or equal to 1, no pruning will be performed.");
        return true;
    }

    private static Tensor Stack(IEnumerable<Tensor> tasks) => torch.stack(tasks.ToArray(), 0);

    private static Tensor Weighted(Tensor stacked, IReadOnlyList<double> weights)
    {
        if (weights.Count != stacked.shape[0]) throw new ArgumentException($"{weights.Count} weights for {stacked.shape[0]} tensors.", nameof(weights));
        var shape = new long[stacked.dim()];
        Array.Fill(shape, 1L);
        shape[0] = weights.Count;
        // float32 weights, as the reference's torch.tensor(weights): a float64 task keeps float64, a bfloat16 one widens.
        return stacked * torch.tensor(weights.Select(w => (float)w).ToArray(), device: stacked.device).view(shape);
    }
}
