// Combining LoRA adapters into a new one, following peft/tuners/lora/model.py (add_weighted_adapter and its helpers).
using Peft.Tuners;
using TorchSharp;
using static TorchSharp.torch;

namespace Peft.Methods.Lora;

/// <summary>The LoRA half of <c>PeftModel.AddWeightedAdapter</c>: the new adapter's config, then its factors.</summary>
internal static class LoraWeightedAdapter
{
    /// <summary>
    /// The combination that will run (one adapter is always combined linearly, as in the reference) and the new
    /// adapter's config: the first adapter's, with the new rank, <c>lora_alpha</c> = r (scaling 1, since every
    /// source's scaling is folded into the factors), the union of the targets and no rank or alpha patterns.
    /// </summary>
    /// <exception cref="PeftConfigException">The adapters or options cannot be combined this way.</exception>
    public static (CombinationType Combination, LoraConfig Config) Plan(IReadOnlyList<(string Name, LoraConfig Config)> sources, WeightedAdapterOptions options)
    {
        foreach (var (name, source) in sources)
        {
            // The reference accepts these and writes a wrong adapter (huggingface/peft#3761): a DoRA magnitude or a lora_B
            // bias is not a low-rank factor, so no combination of the factors carries it.
            if (source.UseDora) throw new PeftConfigException($"Adapter '{name}' uses DoRA (`use_dora`); its magnitude vector cannot be combined into a new adapter.");
            if (source.LoraBias) throw new PeftConfigException($"Adapter '{name}' has `lora_bias`; lora_B's bias cannot be combined into a new adapter.");
        }
        var combination = sources.Count == 1 ? CombinationType.Linear : options.CombinationType;
        CheckOptions(combination, options);
        var ranks = sources.Select(s => s.Config.RankPattern is { Count: > 0 } pattern ? Math.Max(s.Config.R, pattern.Values.Max()) : s.Config.R).ToList();
        int rank;
        if (IsSvd(combination))
        {
            rank = options.SvdRank ?? ranks.Max();
        }
        else if (combination == CombinationType.Cat)
        {
            rank = ranks.Sum();
        }
        else
        {
            if (ranks.Distinct().Count() != 1)
            {
                throw new PeftConfigException($"Combining with {Name(combination)} needs adapters of one rank, got {string.Join(", ", sources.Select((s, i) => $"'{s.Name}' r={ranks[i]}"))}; use cat or an SVD kind.");
            }
            rank = ranks[0];
        }
        var config = sources[0].Config with
        {
            R = rank,
            LoraAlpha = rank,
            UseRsLora = false,
            TargetModules = UnionOfTargets(sources),
            RankPattern = new Dictionary<string, int>(),
            AlphaPattern = new Dictionary<string, double>(),
            // The factors are written below: no initialisation (PiSSA's would rewrite the base weight again).
            WeightsFromCheckpoint = true,
        };
        return (combination, config);
    }

    /// <summary>Writes the new adapter's A and B in every layer it has from the sources' factors in that layer.</summary>
    /// <exception cref="PeftConfigException">An SVD kind meets a layer whose update is not a matrix product.</exception>
    public static void Fill(TunerAdapter target, IReadOnlyList<(string Name, double Weight)> sources, CombinationType combination, WeightedAdapterOptions options)
    {
        using var noGrad = torch.no_grad();
        foreach (var (path, layer) in target.Layers)
        {
            if (layer is not ILoraFactors factors) continue;
            using var scope = torch.NewDisposeScope();
            var held = sources.Where(s => factors.AdapterNames.Contains(s.Name)).ToList();
            if (held.Count == 0) throw new InvalidOperationException($"'{path}' holds none of the adapters combined ({string.Join(", ", sources.Select(s => s.Name))}).");
            var a = factors.FactorA(target.Name);
            var b = factors.FactorB(target.Name);
            a.zero_();
            b.zero_();
            if (combination == CombinationType.Cat)
            {
                var catA = torch.cat(held.Select(s => factors.FactorA(s.Name) * (s.Weight * factors.ScalingOf(s.Name))).ToArray(), 0);
                var catB = torch.cat(held.Select(s => factors.FactorB(s.Name)).ToArray(), 1);
                a.narrow(0, 0, catA.shape[0]).copy_(catA);
                b.narrow(1, 0, catB.shape[1]).copy_(catB);
            }
            else if (IsSvd(combination))
            {
                if (factors.ProductBlocker is { } why) throw new PeftConfigException($"'{path}' is {why}; combine with cat or a kind without SVD.");
                var (newA, newB) = Factorise(CombineDeltas(factors, held, combination, options), a.shape, b.shape, options);
                a.narrow(0, 0, newA.shape[0]).copy_(newA);
                b.narrow(1, 0, newB.shape[1]).copy_(newB);
            }
            else
            {
                CombineFactors(factors, path, held, combination, options, a, b);
            }
        }
    }

    /// <summary>
    /// The SVD kinds combine the deltas ΔWᵢ = sᵢ·BᵢAᵢ (as matrices: B and A flattened past their first dimension)
    /// with weights wᵢ. The scaling is in ΔWᵢ once; some PEFT versions multiplied it into the weights a second time (huggingface/peft#3111).
    /// </summary>
    private static Tensor CombineDeltas(ILoraFactors factors, IReadOnlyList<(string Name, double Weight)> held, CombinationType combination, WeightedAdapterOptions options)
    {
        var deltas = held.Select(s => factors.FactorB(s.Name).flatten(1).mm(factors.FactorA(s.Name).flatten(1)) * factors.ScalingOf(s.Name)).ToList();
        var weights = held.Select(s => s.Weight).ToList();
        return Combine(combination, deltas, weights, options);
    }

    /// <summary>The top singular triplets of <paramref name="delta"/> as A = Vᴴ and B = U·S (kohya-ss' svd_merge_lora), clamped at a quantile if asked.</summary>
    private static (Tensor A, Tensor B) Factorise(Tensor delta, long[] shapeA, long[] shapeB, WeightedAdapterOptions options)
    {
        var rank = shapeA[0];
        var (u, s, vh) = torch.linalg.svd(delta.to(ScalarType.Float32), fullMatrices: options.SvdFullMatrices);
        var kept = Math.Min(rank, s.shape[0]);
        var newB = u[.., ..(int)kept].mm(torch.diag(s[..(int)kept]));
        var newA = vh[..(int)kept];
        if (options.SvdClamp is { } clamp)
        {
            var high = torch.quantile(torch.cat([newB.flatten(), newA.flatten()]), torch.tensor((float)clamp)).item<float>();
            newB = newB.clamp(-high, high);
            newA = newA.clamp(-high, high);
        }
        // Back to the layer's shapes (a convolution's kernel dimensions); fewer triplets than r leave the rest zero.
        var aShape = (long[])shapeA.Clone();
        var bShape = (long[])shapeB.Clone();
        aShape[0] = kept;
        bShape[1] = kept;
        return (newA.reshape(aShape), newB.reshape(bShape));
    }

    /// <summary>
    /// The kinds without SVD combine the A's and the B's separately, each with √|wᵢsᵢ| (the sign on A only), so that a
    /// single adapter with weight w comes back as w·sᵢ·BᵢAᵢ.
    /// </summary>
    private static void CombineFactors(ILoraFactors factors, string path, IReadOnlyList<(string Name, double Weight)> held, CombinationType combination,
        WeightedAdapterOptions options, Tensor a, Tensor b)
    {
        var roots = held.Select(s => Math.Sqrt(Math.Abs(s.Weight * factors.ScalingOf(s.Name)))).ToList();
        var signed = held.Select((s, i) => s.Weight * factors.ScalingOf(s.Name) >= 0 ? roots[i] : -roots[i]).ToList();
        var aTasks = held.Select(s => factors.FactorA(s.Name)).ToList();
        var bTasks = held.Select(s => factors.FactorB(s.Name)).ToList();
        if (aTasks.Any(t => !t.shape.SequenceEqual(a.shape)) || bTasks.Any(t => !t.shape.SequenceEqual(b.shape)))
        {
            throw new PeftConfigException($"'{path}': the adapters' ranks differ in this layer (rank_pattern); combine with cat or an SVD kind.");
        }
        a.copy_(Combine(combination, aTasks, signed, options));
        b.copy_(Combine(combination, bTasks, roots, options));
    }

    private static Tensor Combine(CombinationType combination, IReadOnlyList<Tensor> tasks, IReadOnlyList<double> weights, WeightedAdapterOptions options)
    {
        var sign = options.MajoritySignMethod ?? MajoritySignMethod.Total;
        return combination switch
        {
            CombinationType.Linear or CombinationType.Svd => TaskArithmetic.Sum(tasks, weights),
            CombinationType.Ties or CombinationType.TiesSvd => TaskArithmetic.Ties(tasks, weights, options.Density!.Value, sign),
            CombinationType.DareLinear or CombinationType.DareLinearSvd => TaskArithmetic.DareLinear(tasks, weights, options.Density!.Value),
            CombinationType.DareTies or CombinationType.DareTiesSvd => TaskArithmetic.DareTies(tasks, weights, options.Density!.Value, sign),
            CombinationType.MagnitudePrune or CombinationType.MagnitudePruneSvd => TaskArithmetic.MagnitudePrune(tasks, weights, options.Density!.Value),
            _ => throw new ArgumentOutOfRangeException(nameof(combination), combination, null),
        };
    }

    /// <summary>Every option either applies to the combination that runs or is refused, naming it.</summary>
    private static void CheckOptions(CombinationType combination, WeightedAdapterOptions options)
    {
        var pruning = combination is not (CombinationType.Svd or CombinationType.Linear or CombinationType.Cat);
        var ties = combination is CombinationType.Ties or CombinationType.TiesSvd or CombinationType.DareTies or CombinationType.DareTiesSvd;
        if (pruning && options.Density is null) throw new PeftConfigException($"{Name(combination)} needs `density` (the fraction of values kept, 0–1).");
        if (!pruning && options.Density is not null) throw new PeftConfigException($"`density` has no effect with {Name(combination)}; it applies to the TIES, DARE and magnitude_prune kinds.");
        if (options.Density is < 0) throw new PeftConfigException($"`density` must be at least 0, got {options.Density}.");
        if (!ties && options.MajoritySignMethod is not null) throw new PeftConfigException($"`majority_sign_method` has no effect with {Name(combination)}; it applies to the TIES kinds.");
        if (!IsSvd(combination) && (options.SvdRank is not null || options.SvdClamp is not null || !options.SvdFullMatrices))
        {
            throw new PeftConfigException($"`svd_rank`, `svd_clamp` and `svd_full_matrices` have no effect with {Name(combination)} (one adapter is always combined linearly).");
        }
        if (options.SvdRank is <= 0) throw new PeftConfigException($"`svd_rank` must be positive, got {options.SvdRank}.");
        if (options.SvdClamp is < 0 or > 1) throw new PeftConfigException($"`svd_clamp` is a quantile in [0, 1], got {options.SvdClamp}.");
    }

    private static bool IsSvd(CombinationType combination) =>
        combination is CombinationType.Svd or CombinationType.TiesSvd or CombinationType.DareLinearSvd or CombinationType.DareTiesSvd or CombinationType.MagnitudePruneSvd;

    /// <summary>The reference's spelling: <c>dare_ties_svd</c>.</summary>
    internal static string Name(CombinationType combination) =>
        string.Concat(combination.ToString().Select((c, i) => char.IsUpper(c) && i > 0 ? "_" + char.ToLowerInvariant(c) : char.ToLowerInvariant(c).ToString()));

    private static TargetModules UnionOfTargets(IReadOnlyList<(string Name, LoraConfig Config)> sources)
    {
        var targets = sources.Select(s => s.Config.TargetModules ?? throw new PeftConfigException($"Adapter '{s.Name}' has no resolved target_modules.")).ToList();
        if (targets.All(t => t.Names is not null)) return TargetModules.FromNames(targets.SelectMany(t => t.Names!).Distinct());
        if (targets.All(t => t.Pattern is not null)) return TargetModules.FromPattern(string.Join("|", targets.Select(t => $"({t.Pattern})")));
        throw new PeftConfigException("All adapters' target_modules must be of one kind: combining a list of names with a regular expression is not supported (as in the reference).");
    }
}
