// The LyCORIS layer template, following peft/tuners/lycoris_utils.py (LycorisLayer) and the forward
// that loha/layer.py and lokr/layer.py share.
using Peft.Tuners;
using TorchSharp;
using static TorchSharp.torch;

namespace Peft.Methods.Lycoris;

/// <summary>
/// Base of the LyCORIS layers (LoHa, LoKr) on a Linear: each adapter builds a full weight update
/// <c>ΔW</c> (out, in) from its factors, scaled by alpha / r, and the layer returns
/// <c>base(x) + x ΔWᵀ</c>. During training, rank dropout zeroes rows of ΔW and module dropout skips
/// an adapter for a whole forward pass, as in the reference. Merging adds ΔW to the base weight.
/// </summary>
/// <remarks>A derived layer registers its parameter dictionaries, creates them in its own AddAdapter (calling
/// <see cref="AddSettings"/>), and implements <see cref="DeltaWeight"/> and <see cref="RemoveParameters"/>.</remarks>
public abstract class LycorisLayer : AdapterLayer
{
    private readonly Dictionary<string, LycorisSettings> _settings = [];

    /// <summary>Wraps <paramref name="baseLayer"/> (a Linear).</summary>
    protected LycorisLayer(string name, nn.Module<Tensor, Tensor> baseLayer) : base(name, baseLayer)
    {
    }

    /// <inheritdoc />
    public override IReadOnlyCollection<string> AdapterNames => _settings.Keys;

    /// <summary>Rank, alpha and dropouts of an adapter of this layer.</summary>
    public LycorisSettings Settings(string adapterName) => _settings[adapterName];

    /// <summary>Records an adapter's settings; call once its parameters exist.</summary>
    protected void AddSettings(string adapterName, LycorisSettings settings) => _settings.Add(adapterName, settings);

    /// <summary>The adapter's update in the base weight's (out, in) layout, scaled by alpha / r, without dropout.</summary>
    protected abstract Tensor DeltaWeight(string adapterName);

    /// <summary>Removes the adapter's parameters from the layer's dictionaries.</summary>
    protected abstract void RemoveParameters(string adapterName);

    /// <inheritdoc />
    public override Tensor forward(Tensor input)
    {
        var result = base_layer.call(input);
        if (BaseOnly) return result;
        using var scope = torch.NewDisposeScope();
        foreach (var name in ActiveAdapters)
        {
            if (MergedAdapters.Contains(name)) continue;
            var settings = _settings[name];
            // The reference draws torch.rand(1) each training forward and applies the adapter when it exceeds module_dropout.
            if (training && settings.ModuleDropout > 0 && torch.rand(1).item<float>() <= settings.ModuleDropout) continue;
            var delta = DeltaWeight(name);
            if (training && settings.RankDropout > 0) delta = DropRows(delta, settings);
            result = result + nn.functional.linear(input.to(delta.dtype), delta);
        }
        return result.MoveToOuterDisposeScope();
    }

    /// <summary>Rank dropout: each output row of the update survives with probability 1 − p, rescaled by the survivors' mean when asked.</summary>
    private static Tensor DropRows(Tensor delta, LycorisSettings settings)
    {
        var keep = (torch.rand(delta.shape[0]) > settings.RankDropout).to(delta.dtype);
        if (settings.RankDropoutScale) keep = keep / keep.mean();
        return delta * keep.to(delta.device).view(-1, 1);
    }

    /// <summary>Merging adds the update without dropout, so that unmerging subtracts the same update.</summary>
    protected override Tensor Delta(string adapterName) => DeltaWeight(adapterName).to(BaseWeight.dtype);

    /// <inheritdoc />
    public override void DeleteAdapter(string adapterName)
    {
        if (!_settings.Remove(adapterName)) return;
        RemoveParameters(adapterName);
        ActiveAdapters = ActiveAdapters.Where(a => a != adapterName).ToArray();
    }
}

/// <summary>One LyCORIS adapter's settings on one layer.</summary>
/// <param name="Rank">r.</param>
/// <param name="Alpha">alpha; the update is scaled by alpha / r.</param>
/// <param name="RankDropout">Probability of zeroing an output row of the update during training.</param>
/// <param name="RankDropoutScale">Whether rank dropout rescales the kept rows by their mean (always for LoHa; LoKr's <c>rank_dropout_scale</c>).</param>
/// <param name="ModuleDropout">Probability of skipping the adapter for a training forward pass.</param>
public sealed record LycorisSettings(int Rank, double Alpha, double RankDropout, bool RankDropoutScale, double ModuleDropout)
{
    /// <summary>alpha / r.</summary>
    public double Scaling => Alpha / Rank;
}
