namespace Peft.Methods.Lora;

/// <summary>The reference's keyword arguments of <c>add_weighted_adapter</c> after <c>adapters</c>, <c>weights</c> and <c>adapter_name</c>.</summary>
public sealed record WeightedAdapterOptions
{
    /// <summary><c>combination_type</c>; with a single adapter the reference (and this library) always combines linearly.</summary>
    public CombinationType CombinationType { get; init; } = CombinationType.Svd;

    /// <summary><c>svd_rank</c>: the new adapter's rank for the SVD kinds; null: the largest rank of the adapters combined.</summary>
    public int? SvdRank { get; init; }

    /// <summary><c>svd_clamp</c>: a quantile (0–1) of the factors' values beyond which they are clamped; null: no clamping.</summary>
    public double? SvdClamp { get; init; }

    /// <summary><c>svd_full_matrices</c>: whether the SVD computes full U and Vᴴ (the result is the same; only the cost differs).</summary>
    public bool SvdFullMatrices { get; init; } = true;

    /// <summary><c>density</c>: the fraction of values kept by the pruning kinds (TIES, DARE, magnitude pruning); required by them.</summary>
    public double? Density { get; init; }

    /// <summary><c>majority_sign_method</c> of the TIES kinds; null: <see cref="Lora.MajoritySignMethod.Total"/>.</summary>
    public MajoritySignMethod? MajoritySignMethod { get; init; }
}
