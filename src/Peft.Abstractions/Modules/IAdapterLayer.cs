using static TorchSharp.torch;

namespace Peft;

/// <summary>
/// A layer that wraps a base layer and adds one or more named adapters to it (a LoRA layer, an
/// IA3 layer, ...). Methods implement it; the runtime uses it to merge, unmerge, disable and
/// unwrap adapters without knowing which method made them.
/// </summary>
public interface IAdapterLayer
{
    /// <summary>The frozen layer this one wraps.</summary>
    nn.Module<Tensor, Tensor> BaseLayer { get; }

    /// <summary>Names of the adapters this layer holds.</summary>
    IReadOnlyCollection<string> AdapterNames { get; }

    /// <summary>The adapters whose contribution forward() adds; empty means base layer only.</summary>
    IReadOnlyList<string> ActiveAdapters { get; set; }

    /// <summary>When true, forward() runs the base layer alone (the reference's disable_adapter()).</summary>
    bool AdaptersDisabled { get; set; }

    /// <summary>Names of the adapters currently merged into the base weight.</summary>
    IReadOnlyList<string> MergedAdapters { get; }

    /// <summary>
    /// Why <paramref name="adapterName"/> cannot be merged into this layer (e.g. a LoRA bias on a base
    /// layer without bias), or null when it can. Checked on every layer before any weight changes.
    /// </summary>
    string? MergeBlocker(string adapterName) => null;

    /// <summary>Adds the named adapters' deltas into the base weight.</summary>
    void Merge(IEnumerable<string> adapterNames);

    /// <summary>
    /// <see cref="Merge(IEnumerable{string})"/>; with <paramref name="safeMerge"/> each merged weight is computed on a copy
    /// first and refused (<see cref="Tuners.NonFiniteMergeException"/>, the layer left untouched) when it is not finite.
    /// A layer that cannot check refuses <paramref name="safeMerge"/> rather than ignoring it.
    /// </summary>
    void Merge(IEnumerable<string> adapterNames, bool safeMerge)
    {
        if (safeMerge) throw new NotSupportedException($"{GetType().Name} does not implement safe merging (safe_merge=True).");
        Merge(adapterNames);
    }

    /// <summary>Subtracts every merged adapter's delta from the base weight.</summary>
    void Unmerge();

    /// <summary>Removes one adapter's modules and parameters from this layer.</summary>
    void DeleteAdapter(string adapterName);
}
