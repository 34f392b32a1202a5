// bitsandbytes.nn.Linear4bit (bitsandbytes/nn/modules.py at commit 95f9af3): Params4bit storage,
// _save_to_state_dict's keys, forward in the compute dtype.
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Peft.Quantization;

/// <summary>
/// A frozen Linear stored in 4 bits (NF4 or FP4), blocks of 64 values sharing an absmax, optionally double-quantized.
/// <c>weight</c> is a frozen uint8 parameter of (⌈out·in/2⌉, 1) packed bytes, as bitsandbytes' Params4bit.
/// </summary>
public sealed class Linear4bit : QuantizedLinear
{
    private Parameter _weight;
    private QuantState4Bit? _state;

    /// <summary>An empty layer of (<paramref name="outFeatures"/>, <paramref name="inFeatures"/>), filled by <see cref="Load"/> or <see cref="QuantizeFrom"/>.</summary>
    public Linear4bit(long inFeatures, long outFeatures, Parameter? bias, QuantType type, bool doubleQuant, ScalarType computeDType,
        int blockSize = Blockwise.DefaultBlockSize) : base("Linear4bit", inFeatures, outFeatures, computeDType)
    {
        if (type == QuantType.Int8) throw new ArgumentException("Linear4bit stores nf4 or fp4; int8 is Linear8bit.", nameof(type));
        Blockwise.CheckBlockSize(blockSize);
        QuantType = type;
        DoubleQuant = doubleQuant;
        BlockSize = blockSize;
        _weight = new Parameter(torch.empty([(inFeatures * outFeatures + 1) / 2, 1], dtype: ScalarType.Byte, device: new Device("meta")), requires_grad: false);
        register_parameter("weight", _weight);
        SetBias(bias);
    }

    /// <summary>Quantizes <paramref name="linear"/>'s weight; the bias parameter moves over as it is.</summary>
    public static Linear4bit FromLinear(Linear linear, QuantType type, bool doubleQuant, ScalarType computeDType)
    {
        var weight = linear.weight!;
        var layer = new Linear4bit(weight.shape[1], weight.shape[0], linear.bias, type, doubleQuant, computeDType);
        layer.QuantizeFrom(weight);
        return layer;
    }

    /// <summary>nf4 or fp4.</summary>
    public QuantType QuantType { get; }

    /// <summary>Whether new quantizations quantize the absmax values too.</summary>
    public bool DoubleQuant { get; private set; }

    /// <summary>Values per absmax.</summary>
    public int BlockSize { get; private set; }

    /// <summary>The packed bytes (the <c>weight</c> parameter).</summary>
    public Parameter PackedWeight => _weight;

    /// <inheritdoc />
    public override Tensor StoredWeight => _weight;

    /// <inheritdoc />
    public override int ValuesPerStoredElement => 2;

    /// <summary>The quantization state (absmax, code, nested state).</summary>
    /// <exception cref="InvalidOperationException">The layer was never filled.</exception>
    public QuantState4Bit State => _state ?? throw new InvalidOperationException("This Linear4bit holds no weight yet.");

    /// <inheritdoc />
    public override string Format => QuantType.Name();

    /// <inheritdoc />
    public override Device Device => _weight.device;

    /// <inheritdoc />
    public override long QuantizedBytes => _weight.numel() + (_state?.Bytes ?? 0);

    /// <summary>Quantizes <paramref name="weight"/> (out, in; float32, bfloat16 or float16) into this layer.</summary>
    public void QuantizeFrom(Tensor weight)
    {
        CheckShape(weight);
        using var noGrad = torch.no_grad();
        QuantizeStored(weight);
    }

    /// <summary>Takes a pre-quantized weight: <paramref name="packed"/> bytes and their <paramref name="state"/> (a bitsandbytes checkpoint's).</summary>
    /// <exception cref="ArgumentException">The state's shape is not this layer's, or the bytes are too few.</exception>
    public void Load(Tensor packed, QuantState4Bit state)
    {
        if (state.Shape.Length != 2 || state.Shape[0] != OutFeatures || state.Shape[1] != InFeatures)
        {
            throw new ArgumentException($"a quantized weight of [{string.Join(", ", state.Shape)}] does not fit [{OutFeatures}, {InFeatures}].", nameof(state));
        }
        if (packed.dtype != ScalarType.Byte || packed.numel() != (OutFeatures * InFeatures + 1) / 2)
        {
            throw new ArgumentException($"the packed weight has {packed.numel()} {packed.dtype} values; [{OutFeatures}, {InFeatures}] in 4 bits needs {(OutFeatures * InFeatures + 1) / 2} uint8.", nameof(packed));
        }
        if (state.Type != QuantType) throw new ArgumentException($"the checkpoint's weight is {state.Type.Name()}, this layer {QuantType.Name()}.", nameof(state));
        Replace(packed.reshape(-1, 1), state);
        DoubleQuant = state.Nested;
        BlockSize = state.BlockSize;
    }

    /// <summary>
    /// The tensors bitsandbytes saves for this layer under <paramref name="prefix"/> (e.g. <c>model.layers.0.mlp.up_proj.</c>):
    /// <c>weight</c> (packed uint8), <c>bias</c>, and the quant state's <c>weight.absmax</c>, <c>weight.quant_map</c>,
    /// <c>weight.nested_absmax</c>, <c>weight.nested_quant_map</c>, <c>weight.quant_state.bitsandbytes__nf4</c>.
    /// </summary>
    public Dictionary<string, Tensor> StateDictAsBitsAndBytes(string prefix)
    {
        var result = State.ToStateDict(prefix + "weight");
        result[prefix + "weight"] = _weight;
        if (Bias is { } b) result[prefix + "bias"] = b;
        return result;
    }

    /// <inheritdoc />
    protected override Tensor DequantizeStored() => State.Dequantize(_weight, ComputeDType);

    /// <inheritdoc />
    protected override void QuantizeStored(Tensor weight)
    {
        var (packed, state) = QuantState4Bit.Quantize(weight, QuantType, DoubleQuant, BlockSize);
        Replace(packed, state);
    }

    /// <inheritdoc />
    protected override void ReleaseStored()
    {
        _state?.Dispose();
        _state = null;
    }

    private void Replace(Tensor packed, QuantState4Bit state)
    {
        // The layer keeps these beyond any dispose scope the caller (a merge) runs in.
        state.DetachFromDisposeScope();
        _state?.Dispose();
        _state = state;
        var old = _weight;
        _weight = new Parameter(packed, requires_grad: false);
        _weight.DetachFromDisposeScope();
        SetWeightParameter(_weight);
        old.Dispose();
    }
}
