// LN tuning, following peft/tuners/ln_tuning/layer.py (LNTuningLayer).
using Peft.Layers;
using Peft.Tuners;
using TorchSharp;
using static TorchSharp.torch;

namespace Peft.Methods.LnTuning;

/// <summary>
/// Runs a trainable copy of a norm layer instead of the frozen original. The copy is registered as
/// <c>ln_tuning_layers.&lt;adapter&gt;</c> (its parameters <c>ln_tuning_layers.default.weight</c>, saved as
/// <c>ln_tuning_layers.weight</c>), as the reference names it.
/// </summary>
/// <remarks>
/// Merging puts the copy's values in the base layer and keeps the original's in the copy (the
/// reference swaps the two modules); unmerging swaps them back. One adapter at a time, as the reference.
/// </remarks>
public sealed class LnTuningLayer : AdapterLayer
{
    private readonly AdapterModuleDict<nn.Module<Tensor, Tensor>> ln_tuning_layers = new();

    /// <summary>Wraps the norm layer <paramref name="baseLayer"/>.</summary>
    public LnTuningLayer(nn.Module<Tensor, Tensor> baseLayer) : base(nameof(LnTuningLayer), baseLayer) => RegisterComponents();

    /// <inheritdoc />
    public override IReadOnlyCollection<string> AdapterNames => ln_tuning_layers.Names;

    /// <summary>Adds adapter <paramref name="name"/>: a copy of the base layer, equal to it at first.</summary>
    public void AddAdapter(string name) => ln_tuning_layers.Add(name, NormLayers.Copy(base_layer));

    /// <inheritdoc />
    public override Tensor forward(Tensor input)
    {
        if (BaseOnly) return base_layer.call(input);
        var active = ActiveAdapters.Where(a => !MergedAdapters.Contains(a)).ToList();
        if (active.Count != 1)
        {
            throw new InvalidOperationException(
                $"LN tuning runs one adapter at a time, but {active.Count} are active ({string.Join(", ", active)}).");
        }
        return ln_tuning_layers[active[0]].call(input);
    }

    /// <inheritdoc />
    protected override void MergeAdapter(string adapterName)
    {
        if (MergedAdapters.Count > 0)
        {
            throw new InvalidOperationException(
                $"LN tuning merges one adapter at a time; '{MergedAdapters[0]}' is merged, unmerge it before merging '{adapterName}'.");
        }
        Swap(adapterName);
    }

    /// <inheritdoc />
    protected override void UnmergeAdapter(string adapterName) => Swap(adapterName);

    /// <summary>Exchanges the values of the base layer's parameters and the copy's.</summary>
    private void Swap(string adapterName)
    {
        var copy = ln_tuning_layers[adapterName].named_parameters().ToDictionary(p => p.name, p => p.parameter);
        foreach (var (name, parameter) in base_layer.named_parameters())
        {
            var original = parameter.clone();
            parameter.copy_(copy[name]);
            copy[name].copy_(original);
        }
    }

    /// <inheritdoc />
    public override void DeleteAdapter(string adapterName)
    {
        if (!ln_tuning_layers.Remove(adapterName)) return;
        ActiveAdapters = ActiveAdapters.Where(a => a != adapterName).ToArray();
    }
}
