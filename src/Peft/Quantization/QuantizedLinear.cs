using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Peft.Quantization;

/// <summary>
/// Base of the frozen quantized Linear layers: forward casts the input to <see cref="ComputeDType"/>, multiplies
/// by the weight dequantized for this call only (through <see cref="DequantizedMatmul"/> when a gradient is needed),
/// adds the bias and returns in the input's dtype (as bitsandbytes' Linear4bit.forward).
/// </summary>
public abstract class QuantizedLinear : nn.Module<Tensor, Tensor>, IQuantizedLinear
{
    /// <summary>The bias, registered as <c>bias</c> (kept in floating point), or null.</summary>
#pragma warning disable IDE1006 // Hugging Face's parameter name
    protected Parameter? bias;
#pragma warning restore IDE1006

    // After Densify: the weight in floating point, replacing the quantized storage (MergeAndUnload to a dense dtype).
    private Tensor? _dense;

    /// <summary>A layer of (<paramref name="outFeatures"/>, <paramref name="inFeatures"/>).</summary>
    protected QuantizedLinear(string name, long inFeatures, long outFeatures, ScalarType computeDType) : base(name)
    {
        InFeatures = inFeatures;
        OutFeatures = outFeatures;
        ComputeDType = computeDType;
    }

    /// <inheritdoc />
    public long InFeatures { get; }

    /// <inheritdoc />
    public long OutFeatures { get; }

    /// <inheritdoc />
    public ScalarType ComputeDType { get; }

    /// <inheritdoc />
    public abstract string Format { get; }

    /// <inheritdoc />
    public abstract Device Device { get; }

    /// <inheritdoc />
    public Tensor? Bias => bias;

    /// <inheritdoc />
    public abstract Tensor StoredWeight { get; }

    /// <inheritdoc />
    public abstract int ValuesPerStoredElement { get; }

    /// <summary>Bytes the quantized weight and its state occupy (the bias excluded).</summary>
    public abstract long QuantizedBytes { get; }

    /// <summary>Whether <see cref="Densify"/> replaced the quantized storage by a floating-point weight.</summary>
    public bool IsDense => _dense is not null;

    /// <inheritdoc />
    public Tensor Dequantize()
    {
        if (_dense is not null) return _dense.to(ComputeDType, copy: true);
        using var noGrad = torch.no_grad();
        return DequantizeStored();
    }

    /// <inheritdoc />
    public double Requantize(Tensor weight)
    {
        CheckShape(weight);
        using var noGrad = torch.no_grad();
        if (_dense is not null)
        {
            _dense.copy_(weight);
            return 0;
        }
        using var scope = NewDisposeScope();
        QuantizeStored(weight.detach());
        var error = (DequantizeStored().to(ScalarType.Float32) - weight.to(ScalarType.Float32)).abs().max();
        return error.item<float>();
    }

    /// <summary>
    /// Replaces the quantized storage by the dequantized weight in <paramref name="dtype"/>: later merges add to it
    /// exactly and <see cref="ToLinear"/> hands it over. Used to merge and unload into a dense model.
    /// </summary>
    public void Densify(ScalarType dtype)
    {
        if (_dense is not null) return;
        using var noGrad = torch.no_grad();
        using var weight = DequantizeStored();
        _dense = weight.to(ScalarType.Float32).to(dtype).DetachFromDisposeScope();
        ReleaseStored();
    }

    /// <summary>A plain Linear with the (dequantized or densified) weight in <paramref name="dtype"/> and the bias.</summary>
    public Linear ToLinear(ScalarType dtype)
    {
        using var noGrad = torch.no_grad();
        var linear = nn.Linear(InFeatures, OutFeatures, hasBias: bias is not null, device: Device, dtype: dtype);
        using (var weight = _dense is not null ? _dense.alias() : DequantizeStored()) linear.weight!.copy_(weight);
        if (bias is not null) linear.bias!.copy_(bias);
        linear.weight!.requires_grad = false;
        if (linear.bias is not null) linear.bias.requires_grad = bias!.requires_grad;
        return linear;
    }

    /// <inheritdoc />
    public override Tensor forward(Tensor input)
    {
        using var scope = NewDisposeScope();
        var inputDType = input.dtype;
        var x = input.to(ComputeDType);
        Tensor result;
        if (torch.is_grad_enabled() && x.requires_grad)
        {
            result = DequantizedMatmul.Apply(x, this);
        }
        else
        {
            using var noGrad = torch.no_grad();
            using var weight = Dequantize();
            result = nn.functional.linear(x, weight);
        }
        if (bias is not null) result = result + bias.to(ComputeDType);
        return result.to(inputDType).MoveToOuterDisposeScope();
    }

    /// <summary>The stored weight, dequantized to (out, in) in <see cref="ComputeDType"/>.</summary>
    protected abstract Tensor DequantizeStored();

    /// <summary>Quantizes <paramref name="weight"/> (out, in) into the storage, replacing what was there.</summary>
    protected abstract void QuantizeStored(Tensor weight);

    /// <summary>Frees the quantized storage (after <see cref="Densify"/>).</summary>
    protected abstract void ReleaseStored();

    /// <summary>Checks that <paramref name="weight"/> is (out, in).</summary>
    /// <exception cref="ArgumentException">Another shape.</exception>
    protected void CheckShape(Tensor weight)
    {
        if (weight.ndim != 2 || weight.shape[0] != OutFeatures || weight.shape[1] != InFeatures)
        {
            throw new ArgumentException($"{GetName()}: a weight of [{string.Join(", ", weight.shape)}] does not fit [{OutFeatures}, {InFeatures}].", nameof(weight));
        }
    }

    /// <summary>Registers <paramref name="value"/> as <c>weight</c>, replacing the one registered before (the packed storage changes on requantization).</summary>
    protected void SetWeightParameter(Parameter value) => RegisterParameter.Invoke(this, ["weight", value]);

    private static readonly System.Reflection.MethodInfo RegisterParameter = typeof(nn.Module).GetMethod(
        "ConditionallyRegisterParameter", System.Reflection.BindingFlags.NonPublic | System.Reflection.BindingFlags.Instance, [typeof(string), typeof(Parameter)])
        ?? throw new MissingMethodException("TorchSharp's Module.ConditionallyRegisterParameter(string, Parameter) is missing.");

    /// <summary>Takes <paramref name="value"/> as the bias parameter (a module's own, moved over when a Linear is quantized).</summary>
    protected void SetBias(Parameter? value)
    {
        bias = value;
        if (value is not null) register_parameter("bias", value);
    }

    /// <inheritdoc />
    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _dense?.Dispose();
            ReleaseStored();
        }
        base.Dispose(disposing);
    }
}
