namespace Peft.Methods.Lora;

/// <summary>
/// How <c>PeftModel.AddWeightedAdapter</c> combines LoRA adapters (the reference's <c>combination_type</c>).
/// The <c>…Svd</c> kinds combine the full weight deltas and factor the result back to rank
/// <see cref="WeightedAdapterOptions.SvdRank"/>; the others combine lora_A and lora_B separately.
/// </summary>
public enum CombinationType
{
    /// <summary><c>svd</c>: the weighted sum of the deltas, truncated by SVD.</summary>
    Svd,

    /// <summary><c>linear</c>: weighted sums of A and of B (every adapter must have the same rank).</summary>
    Linear,

    /// <summary><c>cat</c>: A and B concatenated along the rank; exact, the rank is the sum of the ranks.</summary>
    Cat,

    /// <summary><c>ties</c>: TIES-merging of A and of B (magnitude pruning to a density, majority sign, disjoint mean).</summary>
    Ties,

    /// <summary><c>ties_svd</c>: TIES-merging of the deltas, truncated by SVD.</summary>
    TiesSvd,

    /// <summary><c>dare_linear</c>: DARE (random pruning to a density, rescaled), then weighted sums of A and of B.</summary>
    DareLinear,

    /// <summary><c>dare_ties</c>: DARE pruning, then the majority sign and disjoint mean of TIES, on A and on B.</summary>
    DareTies,

    /// <summary><c>dare_linear_svd</c>: DARE on the deltas, summed, truncated by SVD.</summary>
    DareLinearSvd,

    /// <summary><c>dare_ties_svd</c>: DARE-TIES on the deltas, truncated by SVD.</summary>
    DareTiesSvd,

    /// <summary><c>magnitude_prune</c>: magnitude pruning to a density, then weighted sums of A and of B.</summary>
    MagnitudePrune,

    /// <summary><c>magnitude_prune_svd</c>: magnitude pruning of the deltas, summed, truncated by SVD.</summary>
    MagnitudePruneSvd,
}

/// <summary>How TIES elects each entry's sign (the reference's <c>majority_sign_method</c>).</summary>
public enum MajoritySignMethod
{
    /// <summary><c>total</c>: the sign of the sum of the values.</summary>
    Total,

    /// <summary><c>frequency</c>: the sign most values have.</summary>
    Frequency,
}
