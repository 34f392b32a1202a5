// FourierFT for Linear and GPT-2 Conv1D layers, following peft/tuners/fourierft/layer.py (FourierFTLayer, FourierFTLinear).
using Peft.Tuners;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Peft.Methods.FourierFT;

/// <summary>
/// Learns <c>n</c> entries of the weight update's 2-D spectrum: <c>ΔW = Re(ifft2(S)) · scaling</c>, where S
/// (out, in) is zero except at n positions drawn by <c>torch.randperm(out·in)</c> from a generator seeded
/// with <c>random_loc_seed</c> (not saved; redrawn identically on load). The parameter name matches the
/// reference: <c>fourierft_spectrum.&lt;adapter&gt;</c> (n).
/// </summary>
public sealed class FourierFTLayer : AdapterLayer
{
    private readonly ParameterDict fourierft_spectrum = new();
    private readonly Dictionary<string, (Tensor Rows, Tensor Columns, double Scaling)> _entries = [];
    private readonly bool _fanInFanOut;

    /// <summary>Wraps <paramref name="baseLayer"/> (Linear or Conv1D).</summary>
    public FourierFTLayer(nn.Module<Tensor, Tensor> baseLayer) : base(nameof(FourierFTLayer), baseLayer)
    {
        // The weight's layout follows the layer's kind: the reference resets fan_in_fan_out to true for Conv1D, false for Linear.
        _fanInFanOut = Shape.Kind == SlotKind.Conv1D;
        RegisterComponents();
    }

    /// <inheritdoc />
    public override IReadOnlyCollection<string> AdapterNames => _entries.Keys;

    /// <summary>The (row, column) of each learned spectral entry, as two (n) tensors.</summary>
    public (Tensor Rows, Tensor Columns) Entries(string adapterName) => (_entries[adapterName].Rows, _entries[adapterName].Columns);

    /// <summary>Adds adapter <paramref name="name"/> learning <paramref name="frequencies"/> entries.</summary>
    /// <exception cref="PeftConfigException">More entries than the weight has.</exception>
    public void AddAdapter(string name, int frequencies, FourierFTConfig config)
    {
        long inFeatures = Shape.InFeatures, outFeatures = Shape.OutFeatures;
        if (frequencies > inFeatures * outFeatures)
        {
            throw new PeftConfigException(
                $"`n_frequency` should be less than or equal to the product of the input and output dimensions but the value passed is {frequencies} and the product is {inFeatures * outFeatures}.");
        }
        using var generator = new torch.Generator().manual_seed(config.RandomLocSeed!.Value);
        using var permutation = torch.randperm(inFeatures * outFeatures, dtype: ScalarType.Int64, generator: generator);
        // Row and column of each flat index in integer arithmetic (TorchSharp's rounding division returns floats).
        var picked = permutation.narrow(0, 0, frequencies).data<long>().ToArray();
        var rows = torch.tensor(picked.Select(i => i / inFeatures).ToArray()).DetachFromDisposeScope();
        var columns = torch.tensor(picked.Select(i => i % inFeatures).ToArray()).DetachFromDisposeScope();

        var weight = BaseWeight;
        var spectrum = torch.randn(frequencies, dtype: weight.dtype, device: weight.device);
        if (config.InitWeights) spectrum.zero_();
        fourierft_spectrum.Add((name, new Parameter(spectrum)));
        _entries[name] = (rows, columns, config.Scaling);
    }

    /// <summary>Re(ifft2(S)) · scaling, (out, in), in the spectrum's dtype; the transform runs in float32 as in the reference.</summary>
    private Tensor DeltaWeight(string adapterName)
    {
        var spectrum = fourierft_spectrum[adapterName];
        var (rows, columns, scaling) = _entries[adapterName];
        var dense = torch.zeros(Shape.OutFeatures, Shape.InFeatures, dtype: ScalarType.Float32, device: spectrum.device);
        dense.index_put_(spectrum.to(ScalarType.Float32), rows.to(spectrum.device), columns.to(spectrum.device));
        return (torch.fft.ifft2(dense).real * scaling).to(spectrum.dtype);
    }

    /// <inheritdoc />
    public override Tensor forward(Tensor input)
    {
        var result = base_layer.call(input);
        if (BaseOnly) return result;
        using var scope = torch.NewDisposeScope();
        foreach (var name in ActiveAdapters)
        {
            if (MergedAdapters.Contains(name)) continue;
            var delta = DeltaWeight(name);
            result = result + nn.functional.linear(input.to(delta.dtype), delta);
        }
        return result.MoveToOuterDisposeScope();
    }

    /// <inheritdoc />
    protected override Tensor Delta(string adapterName)
    {
        var delta = DeltaWeight(adapterName);
        return (_fanInFanOut ? delta.T : delta).to(BaseWeight.dtype);
    }

    /// <inheritdoc />
    public override void DeleteAdapter(string adapterName)
    {
        if (!_entries.Remove(adapterName, out var entries)) return;
        entries.Rows.Dispose();
        entries.Columns.Dispose();
        fourierft_spectrum.Remove(adapterName);
        ActiveAdapters = ActiveAdapters.Where(a => a != adapterName).ToArray();
    }
}
