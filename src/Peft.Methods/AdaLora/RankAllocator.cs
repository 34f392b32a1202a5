// AdaLoRA's rank allocator, following peft/tuners/adalora/layer.py (RankAllocator).
using TorchSharp;
using static TorchSharp.torch;

namespace Peft.Methods.AdaLora;

/// <summary>
/// Decides, during training, which singular triplets (row of A, entry of E, column of B) each layer
/// keeps. Every step it smooths each entry's sensitivity <c>|p·∇p|</c> (EMA <c>beta1</c>) and its
/// uncertainty (EMA <c>beta2</c> of the deviation); on allocation steps it scores each triplet, keeps
/// the best <see cref="BudgetSchedule"/> of them across all layers and zeroes the others' E.
/// </summary>
public sealed class RankAllocator
{
    private readonly AdaLoraConfig _config;
    private readonly string _adapterName;
    private readonly IReadOnlyList<(string Path, AdaLoraLayer Layer)> _layers;
    private readonly Dictionary<string, (Tensor Smoothed, Tensor Uncertainty)> _scores = [];

    /// <summary>An allocator over <paramref name="layers"/>; the budget starts at their total rank.</summary>
    /// <param name="config">The schedule and EMA coefficients.</param>
    /// <param name="adapterName">The adapter whose triplets are allocated.</param>
    /// <param name="layers">Its layers by full module name.</param>
    public RankAllocator(AdaLoraConfig config, string adapterName, IReadOnlyList<(string Path, AdaLoraLayer Layer)> layers)
    {
        _config = config;
        _adapterName = adapterName;
        _layers = layers;
        InitialBudget = layers.Sum(l => (int)l.Layer.A(adapterName).shape[0]);
        TargetBudget = config.TargetR * layers.Count;
    }

    /// <summary>The total rank at the start (the reference's init_bgt).</summary>
    public int InitialBudget { get; }

    /// <summary>The total rank at the end: target_r per layer (target_bgt).</summary>
    public int TargetBudget { get; }

    /// <summary>
    /// The budget at <paramref name="step"/> and whether this step allocates: the full budget up to
    /// tinit (no allocation), the target budget after total_step − tfinal (allocation), and in between
    /// <c>⌊(init − target)·(1 − (step − tinit)/(total − tfinal − tinit))³ + target⌋</c>, allocating
    /// every deltaT steps.
    /// </summary>
    public (int Budget, bool Allocates) BudgetSchedule(int step)
    {
        int tinit = _config.TInit, tfinal = _config.TFinal, total = _config.TotalStep ?? 0;
        if (step <= tinit) return (InitialBudget, false);
        if (step > total - tfinal) return (TargetBudget, true);
        var coefficient = 1 - (double)(step - tinit) / (total - tfinal - tinit);
        var budget = (int)((InitialBudget - TargetBudget) * Math.Pow(coefficient, 3) + TargetBudget);
        return (budget, step % _config.DeltaT == 0);
    }

    /// <summary>
    /// One step of the reference's update_and_allocate: updates the importance scores (before the
    /// final phase) and, on an allocation step or when <paramref name="forceMask"/>, masks to the
    /// budget. Returns the rank pattern when it masked, else null.
    /// </summary>
    public IReadOnlyDictionary<string, IReadOnlyList<bool>>? UpdateAndAllocate(int step, bool forceMask = false)
    {
        if (step < _config.FinalStep) UpdateImportance();
        var (budget, allocates) = BudgetSchedule(step);
        return allocates || forceMask ? MaskToBudget(budget) : null;
    }

    /// <summary>Forgets the importance scores (after the final allocation).</summary>
    public void ResetImportance()
    {
        foreach (var (smoothed, uncertainty) in _scores.Values)
        {
            smoothed.Dispose();
            uncertainty.Dispose();
        }
        _scores.Clear();
    }

    /// <summary>Zeroes the E entries <paramref name="rankPattern"/> drops (the final phase, every step).</summary>
    public void MaskUsingRankPattern(IReadOnlyDictionary<string, IReadOnlyList<bool>> rankPattern)
    {
        using var noGrad = torch.no_grad();
        using var scope = torch.NewDisposeScope();
        foreach (var (path, layer) in _layers)
        {
            var key = AdaLoraAdapter.RankPatternKey(path);
            if (!rankPattern.TryGetValue(key, out var keep)) throw new InvalidOperationException($"rank_pattern has no entry '{key}'.");
            var e = layer.E(_adapterName);
            var dropped = torch.tensor(keep.Select(k => !k).ToArray(), device: e.device).unsqueeze(-1);
            e.masked_fill_(dropped, 0.0);
        }
    }

    private IEnumerable<(string Key, Tensor Parameter)> Scored()
    {
        foreach (var (path, layer) in _layers)
        {
            yield return ($"{path}.lora_A", layer.A(_adapterName));
            yield return ($"{path}.lora_B", layer.B(_adapterName));
            yield return ($"{path}.lora_E", layer.E(_adapterName));
        }
    }

    private void UpdateImportance()
    {
        using var noGrad = torch.no_grad();
        foreach (var (key, p) in Scored())
        {
            var grad = p.grad ?? throw new InvalidOperationException(
                $"AdaLoRA's rank allocator needs the gradient of '{key}': call it after backward() and before the gradients are zeroed.");
            using var scope = torch.NewDisposeScope();
            var importance = (p * grad).abs();
            var (smoothed, uncertainty) = _scores.TryGetValue(key, out var previous)
                ? previous
                : (torch.zeros_like(p), torch.zeros_like(p));
            var newSmoothed = smoothed * _config.Beta1 + importance * (1 - _config.Beta1);
            var newUncertainty = uncertainty * _config.Beta2 + (importance - newSmoothed).abs() * (1 - _config.Beta2);
            _scores[key] = (newSmoothed.DetachFromDisposeScope(), newUncertainty.DetachFromDisposeScope());
            smoothed.Dispose();
            uncertainty.Dispose();
        }
    }

    private Tensor ElementScore(string key)
    {
        if (!_scores.TryGetValue(key, out var score)) throw new InvalidOperationException($"AdaLoRA has no importance score for '{key}' yet: no step updated it.");
        return score.Smoothed * score.Uncertainty;
    }

    /// <summary>Keeps the <paramref name="budget"/> best-scored triplets across all layers and zeroes the others' E.</summary>
    private Dictionary<string, IReadOnlyList<bool>> MaskToBudget(int budget)
    {
        using var noGrad = torch.no_grad();
        using var scope = torch.NewDisposeScope();
        var triplets = new List<(string Path, AdaLoraLayer Layer, Tensor Score)>();
        foreach (var (path, layer) in _layers)
        {
            var a = ElementScore($"{path}.lora_A").mean([1], keepdim: true);        // (r, 1)
            var b = ElementScore($"{path}.lora_B").mean([0]).view(-1, 1);           // (r, 1)
            var e = ElementScore($"{path}.lora_E").view(-1);                         // (r)
            triplets.Add((path, layer, e + torch.cat([a, b], 1).sum(1).view(-1)));
        }
        var k = InitialBudget - budget;
        // The reference's kthvalue needs k ≥ 1; with nothing to drop, every triplet stays.
        var threshold = k <= 0
            ? double.NegativeInfinity
            : torch.kthvalue(torch.cat(triplets.Select(t => t.Score).ToArray()), k, 0).values.to(ScalarType.Float64).item<double>();
        var pattern = new Dictionary<string, IReadOnlyList<bool>>();
        foreach (var (path, layer, score) in triplets)
        {
            var dropped = score.le(threshold);
            layer.E(_adapterName).masked_fill_(dropped.view(-1, 1), 0.0);
            pattern[AdaLoraAdapter.RankPatternKey(path)] = dropped.logical_not().data<bool>().ToArray();
        }
        return pattern;
    }
}
