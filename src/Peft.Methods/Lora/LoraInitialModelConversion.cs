// The reference's save_pretrained(path_initial_model_for_weight_conversion=...): LoraModel.subtract_mutated_init and
// _convert_state_dict_for_initial_model in peft/tuners/lora/model.py, and the config rewrite in peft_model.py.
using static TorchSharp.torch;

namespace Peft.Methods.Lora;

/// <summary>
/// Turns a trained PiSSA or OLoRA adapter, which only fits the residual base weights its initialisation left behind,
/// into a plain LoRA adapter for the unmodified base model. With W = W_res + s·B₀A₀ at the start and W_res + s·BA
/// after training, the update to W is s·(BA − B₀A₀) = s·[B | −B₀]·[A ; A₀]: rank 2r at the same scaling.
/// </summary>
internal static class LoraInitialModelConversion
{
    /// <summary>The config of the converted adapter: rank and rank_pattern doubled, alpha scaled to keep α/r (α/√r with rsLoRA).</summary>
    /// <param name="trained">The trained adapter's config.</param>
    /// <exception cref="PeftConfigException">rsLoRA with a rank or alpha pattern, which the reference refuses too.</exception>
    public static LoraConfig ConvertedConfig(LoraConfig trained)
    {
        var patterns = trained.RankPattern is { Count: > 0 } || trained.AlphaPattern is { Count: > 0 };
        if (trained.UseRsLora && patterns)
        {
            throw new PeftConfigException("Converting to a plain LoRA adapter on save is not supported with `rank_pattern` or `alpha_pattern` together with `use_rslora`.");
        }
        if (trained.UseDora) throw new PeftConfigException("Converting to a plain LoRA adapter on save is not supported for DoRA (`use_dora`): its magnitude depends on the base weight.");
        return trained with
        {
            InitLoraWeights = LoraInitWeights.Default,
            R = trained.R * 2,
            LoraAlpha = trained.UseRsLora ? trained.LoraAlpha * Math.Sqrt(2) : trained.LoraAlpha * 2,
            RankPattern = trained.RankPattern?.ToDictionary(kv => kv.Key, kv => kv.Value * 2),
            AlphaPattern = trained.AlphaPattern?.ToDictionary(kv => kv.Key, kv => kv.Value * 2),
        };
    }

    /// <summary>
    /// The converted weights: every lora_A stacked over its initial value, every lora_B beside its negated initial value;
    /// other tensors (modules_to_save copies, biases) are kept, since they never depended on the residual.
    /// </summary>
    /// <param name="trained">The trained adapter's tensors, by saved key.</param>
    /// <param name="initial">The same adapter's tensors as saved right after initialisation, by saved key.</param>
    /// <param name="initialSource">The initial adapter's weights file, for messages.</param>
    /// <exception cref="InvalidDataException">The initial adapter lacks a factor or its shape differs.</exception>
    /// <exception cref="PeftConfigException">An adapted embedding, whose rank the doubled config would not describe.</exception>
    public static Dictionary<string, Tensor> ConvertedWeights(IReadOnlyDictionary<string, Tensor> trained, IReadOnlyDictionary<string, Tensor> initial, string initialSource)
    {
        var converted = new Dictionary<string, Tensor>(trained.Count);
        foreach (var (key, value) in trained)
        {
            if (key.Contains(".lora_embedding_", StringComparison.Ordinal))
            {
                throw new PeftConfigException($"'{key}': adapted embeddings cannot be converted to a plain LoRA adapter on save (their initialisation leaves the base weight as it was).");
            }
            var isA = key.Contains(".lora_A.", StringComparison.Ordinal);
            var isB = key.Contains(".lora_B.", StringComparison.Ordinal) && key.EndsWith(".weight", StringComparison.Ordinal);
            if (!isA && !isB)
            {
                converted[key] = value;
                continue;
            }
            if (!initial.TryGetValue(key, out var start)) throw new InvalidDataException($"{initialSource}: '{key}' is missing; is it the initial state of this adapter?");
            if (!start.shape.SequenceEqual(value.shape))
            {
                throw new InvalidDataException($"{initialSource}: '{key}' is [{string.Join(", ", start.shape)}], the trained adapter's is [{string.Join(", ", value.shape)}]; is it the initial state of this adapter?");
            }
            var initialValue = start.to(value.dtype, value.device);
            converted[key] = isA ? cat([value, initialValue], 0) : cat([value, -initialValue], 1);
        }
        return converted;
    }
}
