using Peft.Modeling;
using Peft.Tuners;

namespace Peft.Methods.Lora;

/// <summary>A LoRA adapter: a <see cref="TunerAdapter"/> that saves DoRA's magnitude under the reference's key.</summary>
/// <remarks>
/// The reference's magnitude lives in a module (<c>lora_magnitude_vector.default.weight</c> in memory)
/// but is saved under its older name, <c>lora_magnitude_vector</c> (peft's get_peft_model_state_dict
/// drops the <c>.weight</c>), so adapters from either side load on the other.
/// </remarks>
public sealed class LoraAdapter : TunerAdapter
{
    private const string MagnitudeKey = ".lora_magnitude_vector.weight";

    internal LoraAdapter(PreTrainedModel model, string name, TunerConfig config, string parameterPrefix,
        IReadOnlyList<(string, IAdapterLayer)> layers, IReadOnlyList<(string, ModulesToSaveWrapper)> saved)
        : base(model, name, config, parameterPrefix, layers, saved)
    {
    }

    /// <inheritdoc />
    protected override string SavedKey(string name)
    {
        var key = base.SavedKey(name);
        return key.EndsWith(MagnitudeKey, StringComparison.Ordinal) ? key[..^".weight".Length] : key;
    }
}
