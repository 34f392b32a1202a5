// AdaLoRA's model-level behaviour, following peft/tuners/adalora/model.py (AdaLoraModel): the
// orthogonality regulariser in forward(), update_and_allocate, and saving/loading by rank_pattern.
using Peft.Modeling;
using Peft.Tuners;
using TorchSharp;
using static TorchSharp.torch;

namespace Peft.Methods.AdaLora;

/// <summary>
/// An AdaLoRA adapter: adds <c>orth_reg_weight · mean ‖AAᵀ − I‖_F, ‖BᵀB − I‖_F</c> to every loss,
/// runs the <see cref="RankAllocator"/> after each optimizer step, saves only the triplets its
/// rank_pattern keeps, and resizes its layers to that pattern when an adapter is loaded.
/// </summary>
public sealed class AdaLoraAdapter : TunerAdapter
{
    private readonly IReadOnlyList<(string Path, AdaLoraLayer Layer)> _svdLayers;
    private RankAllocator? _allocator;

    internal AdaLoraAdapter(PreTrainedModel model, string name, AdaLoraConfig config, string parameterPrefix,
        IReadOnlyList<(string, IAdapterLayer)> layers, IReadOnlyList<(string, ModulesToSaveWrapper)> saved)
        : base(model, name, config, parameterPrefix, layers, saved)
    {
        _svdLayers = layers.Select(l => (l.Item1, (AdaLoraLayer)l.Item2)).ToList();
    }

    private AdaLoraConfig AdaConfig => (AdaLoraConfig)Config;

    /// <summary>The rank allocator (made at the first training step, over the layers' ranks then).</summary>
    public RankAllocator Allocator => _allocator ??= new RankAllocator(AdaConfig, Name, _svdLayers);

    /// <summary>The rank_pattern key of the layer at <paramref name="path"/>: <c>&lt;path&gt;.lora_E</c>, as the reference saves it.</summary>
    public static string RankPatternKey(string path) => path + ".lora_E";

    /// <summary>Adds the orthogonality regulariser to the loss, when there is one (as the reference, also with the adapter disabled).</summary>
    public override ModelOutputs CompleteOutputs(ModelOutputs outputs)
    {
        if (outputs.Loss is not { } loss) return outputs;
        Tensor? sum = null;
        var count = 0;
        foreach (var (_, layer) in _svdLayers)
        {
            var a = layer.A(Name);
            var b = layer.B(Name);
            foreach (var covariance in new[] { torch.matmul(a, a.T), torch.matmul(b.T, b) })
            {
                var identity = torch.eye(covariance.shape[0], covariance.shape[1], dtype: covariance.dtype, device: covariance.device);
                var norm = torch.linalg.matrix_norm(covariance - identity, "fro");
                sum = sum is null ? norm : sum + norm;
                count++;
            }
        }
        if (sum is null) return outputs;
        return outputs with { Loss = loss + sum / count * AdaConfig.OrthRegWeight };
    }

    /// <summary>
    /// The reference's <c>update_and_allocate(global_step)</c>: importance update and masking to the
    /// scheduled budget before <c>total_step − tfinal</c>; the final allocation at that step (the
    /// rank_pattern is fixed); after it, the fixed pattern is applied again each step.
    /// </summary>
    public override void AfterOptimizerStep(int globalStep)
    {
        var final = AdaConfig.FinalStep;
        if (globalStep < final)
        {
            if (Allocator.UpdateAndAllocate(globalStep) is { } pattern) Config = AdaConfig with { RankPattern = pattern };
        }
        else if (globalStep == final)
        {
            Config = AdaConfig with { RankPattern = Allocator.UpdateAndAllocate(globalStep, forceMask: true) };
            Allocator.ResetImportance();
        }
        else
        {
            var pattern = AdaConfig.RankPattern ?? throw new InvalidOperationException(
                $"AdaLoRA step {globalStep} is past total_step − tfinal = {final} but no rank_pattern was allocated; was training started at step {final} or later?");
            Allocator.MaskUsingRankPattern(pattern);
        }
    }

    /// <summary>The saved state keeps only the triplets the rank_pattern marks (resize_state_dict_by_rank_pattern).</summary>
    public override IReadOnlyDictionary<string, Tensor> GetStateDict()
    {
        var state = new Dictionary<string, Tensor>(base.GetStateDict());
        if (AdaConfig.RankPattern is not { } pattern) return state;
        foreach (var (path, _) in _svdLayers)
        {
            if (!pattern.TryGetValue(RankPatternKey(path), out var keep)) continue;
            var kept = keep.Count(k => k);
            var prefix = SavedKeyPrefix + path;
            var index = torch.tensor(Enumerable.Range(0, keep.Count).Where(i => keep[i]).Select(i => (long)i).ToArray());
            foreach (var (suffix, dim) in new[] { (".lora_E", 0), (".lora_A", 0), (".lora_B", 1) })
            {
                var tensor = state[prefix + suffix];
                if (tensor.shape[dim] != kept) state[prefix + suffix] = tensor.detach().index_select(dim, index.to(tensor.device));
            }
        }
        return state;
    }

    /// <summary>Resizes each layer to the config's rank_pattern (resize_modules_by_rank_pattern), then loads.</summary>
    public override void LoadStateDict(IReadOnlyDictionary<string, Tensor> state, string source)
    {
        if (AdaConfig.RankPattern is { } pattern)
        {
            foreach (var (path, layer) in _svdLayers)
            {
                if (!TryGetPattern(pattern, path, out var keep)) continue;
                if (layer.E(Name).shape[0] == keep.Count && keep.Count(k => k) != keep.Count) layer.Resize(Name, keep);
            }
        }
        base.LoadStateDict(state, source);
    }

    /// <summary>Finds a layer's entry, with or without the adapter name in the key (the reference accepts both).</summary>
    private bool TryGetPattern(IReadOnlyDictionary<string, IReadOnlyList<bool>> pattern, string path, out IReadOnlyList<bool> keep) =>
        pattern.TryGetValue(RankPatternKey(path), out keep!) || pattern.TryGetValue($"{RankPatternKey(path)}.{Name}", out keep!);
}
