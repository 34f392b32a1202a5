// bitsandbytes.nn.Linear8bitLt with has_fp16_weights=False (bitsandbytes/nn/modules.py at commit 95f9af3):
// Int8Params storage (CB in weight, SCB beside it) and its _save_to_state_dict keys.
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Peft.Quantization;

/// <summary>
/// A frozen Linear stored as LLM.int8 stores it: <c>weight</c> is int8 (out, in), <c>SCB</c> the float32 absmax of
/// each row. Forward multiplies by the dequantized weight in the compute dtype (bitsandbytes also quantizes the
/// activations to int8 and splits outlier columns off; see docs/QUANTIZATION.md).
/// </summary>
public sealed class Linear8bit : QuantizedLinear
{
    private Parameter _weight;
    private Tensor? _scb;

    /// <summary>An empty layer of (<paramref name="outFeatures"/>, <paramref name="inFeatures"/>), filled by <see cref="Load"/> or <see cref="QuantizeFrom"/>.</summary>
    public Linear8bit(long inFeatures, long outFeatures, Parameter? bias, ScalarType computeDType) : base("Linear8bitLt", inFeatures, outFeatures, computeDType)
    {
        _weight = new Parameter(torch.empty([outFeatures, inFeatures], dtype: ScalarType.Int8, device: new Device("meta")), requires_grad: false);
        register_parameter("weight", _weight);
        SetBias(bias);
    }

    /// <summary>Quantizes <paramref name="linear"/>'s weight; the bias parameter moves over as it is.</summary>
    public static Linear8bit FromLinear(Linear linear, ScalarType computeDType)
    {
        var weight = linear.weight!;
        var layer = new Linear8bit(weight.shape[1], weight.shape[0], linear.bias, computeDType);
        layer.QuantizeFrom(weight);
        return layer;
    }

    /// <summary>The int8 codes (the <c>weight</c> parameter, bitsandbytes' <c>CB</c>).</summary>
    public Parameter CB => _weight;

    /// <inheritdoc />
    public override Tensor StoredWeight => _weight;

    /// <inheritdoc />
    public override int ValuesPerStoredElement => 1;

    /// <summary>The float32 absmax of each output row.</summary>
    /// <exception cref="InvalidOperationException">The layer was never filled.</exception>
    public Tensor SCB => _scb ?? throw new InvalidOperationException("This Linear8bit holds no weight yet.");

    /// <inheritdoc />
    public override string Format => QuantType.Int8.Name();

    /// <inheritdoc />
    public override Device Device => _weight.device;

    /// <inheritdoc />
    public override long QuantizedBytes => _weight.numel() + (_scb?.numel() ?? 0) * 4;

    /// <summary>Quantizes <paramref name="weight"/> (out, in) into this layer.</summary>
    public void QuantizeFrom(Tensor weight)
    {
        CheckShape(weight);
        using var noGrad = torch.no_grad();
        QuantizeStored(weight);
    }

    /// <summary>Takes a pre-quantized weight: int8 <paramref name="cb"/> (out, in) and float <paramref name="scb"/> (out).</summary>
    /// <exception cref="ArgumentException">Wrong dtypes or shapes.</exception>
    public void Load(Tensor cb, Tensor scb)
    {
        if (cb.dtype != ScalarType.Int8) throw new ArgumentException($"an int8 weight is needed, not {cb.dtype}.", nameof(cb));
        CheckShape(cb);
        if (scb.numel() != OutFeatures) throw new ArgumentException($"SCB has {scb.numel()} values; {OutFeatures} rows need as many.", nameof(scb));
        Replace(cb, scb.to(ScalarType.Float32).reshape(-1));
    }

    /// <summary>The tensors bitsandbytes saves for this layer under <paramref name="prefix"/>: <c>weight</c>, <c>bias</c>, <c>SCB</c>, <c>weight_format</c> (0: row-major).</summary>
    public Dictionary<string, Tensor> StateDictAsBitsAndBytes(string prefix)
    {
        var result = new Dictionary<string, Tensor>(StringComparer.Ordinal)
        {
            [prefix + "weight"] = _weight,
            [prefix + "SCB"] = SCB,
            [prefix + "weight_format"] = torch.tensor((byte)0),
        };
        if (Bias is { } b) result[prefix + "bias"] = b;
        return result;
    }

    /// <inheritdoc />
    protected override Tensor DequantizeStored()
    {
        using var scope = NewDisposeScope();
        return Int8Rowwise.Dequantize(_weight, SCB).to(ComputeDType).MoveToOuterDisposeScope();
    }

    /// <inheritdoc />
    protected override void QuantizeStored(Tensor weight)
    {
        var (cb, scb) = Int8Rowwise.Quantize(weight);
        Replace(cb, scb);
    }

    /// <inheritdoc />
    protected override void ReleaseStored()
    {
        _scb?.Dispose();
        _scb = null;
    }

    private void Replace(Tensor cb, Tensor scb)
    {
        // The layer keeps these beyond any dispose scope the caller (a merge) runs in.
        _scb?.Dispose();
        _scb = scb.DetachFromDisposeScope();
        var old = _weight;
        _weight = new Parameter(cb, requires_grad: false);
        _weight.DetachFromDisposeScope();
        SetWeightParameter(_weight);
        old.Dispose();
    }
}
