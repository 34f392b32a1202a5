using Peft.Methods.Lora;
using Peft.Tuners;

namespace Peft;

public sealed partial class PeftModel
{
    /// <summary>
    /// Adds adapter <paramref name="adapterName"/> made of LoRA adapters <paramref name="adapters"/> combined with
    /// <paramref name="weights"/> (the reference's <c>add_weighted_adapter</c>); it stays inactive until <see cref="SetAdapter"/>.
    /// </summary>
    /// <remarks>
    /// The new adapter has the first adapter's config with the new rank, <c>lora_alpha</c> equal to it, the union of the
    /// targets and no rank or alpha patterns; its parameters are frozen, as in the reference. A weight may be negative.
    /// Unlike the reference, an existing <paramref name="adapterName"/> is an error (the reference returns without doing
    /// anything), and options that do not apply to the combination are refused rather than ignored.
    /// </remarks>
    /// <exception cref="ArgumentException">An adapter is unknown or not LoRA, the counts differ, or the name is taken.</exception>
    /// <exception cref="PeftConfigException">The adapters or options cannot be combined this way.</exception>
    public void AddWeightedAdapter(IReadOnlyList<string> adapters, IReadOnlyList<double> weights, string adapterName, WeightedAdapterOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(adapters);
        ArgumentNullException.ThrowIfNull(weights);
        options ??= new WeightedAdapterOptions();
        if (adapters.Count == 0) throw new ArgumentException("No adapters to combine.", nameof(adapters));
        if (weights.Count != adapters.Count) throw new ArgumentException($"{weights.Count} weights for {adapters.Count} adapters.", nameof(weights));
        if (_adapters.ContainsKey(adapterName)) throw new ArgumentException($"An adapter named '{adapterName}' already exists.", nameof(adapterName));
        var sources = adapters.Select(name => _adapters.TryGetValue(name, out var adapter)
            ? adapter.Config is LoraConfig lora ? (name, lora) : throw new ArgumentException($"Adapter '{name}' is {adapter.Config.PeftType}; only LoRA adapters can be combined.", nameof(adapters))
            : throw new ArgumentException($"No adapter named '{name}'; loaded: {string.Join(", ", _adapters.Keys)}.", nameof(adapters))).ToList();
        var shared = Model.modules().OfType<ModulesToSaveWrapper>().Count(w => adapters.Count(w.Copies.ContainsKey) > 1);
        if (shared > 0)
        {
            throw new PeftConfigException($"Cannot add weighted adapters if they target the same module with modules_to_save, but found {shared} such instance(s).");
        }

        var (combination, config) = LoraWeightedAdapter.Plan(sources, options);
        AddAdapter(adapterName, config);
        var added = (TunerAdapter)_adapters[adapterName];
        foreach (var (_, parameter) in added.NamedParameters()) parameter.requires_grad = false;
        try
        {
            LoraWeightedAdapter.Fill(added, adapters.Select((name, i) => (name, weights[i])).ToList(), combination, options);
        }
        catch
        {
            DeleteAdapter(adapterName);
            throw;
        }
    }
}
