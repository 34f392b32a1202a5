// OFT for Linear layers, following peft/tuners/oft/layer.py (OFTLayer, Linear).
using Peft.Tuners;
using TorchSharp;
using static TorchSharp.torch;

namespace Peft.Methods.Oft;

/// <summary>
/// Orthogonal fine-tuning: the input is rotated by a block-diagonal orthogonal matrix before the frozen
/// layer, <c>base(x · blockdiag(R))</c>. The parameter name matches the reference:
/// <c>oft_R.&lt;adapter&gt;.weight</c> (blocks, b(b−1)/2). Merging folds the rotation into the weight
/// (<c>Wᵀ ← M Wᵀ</c>); unmerging multiplies by M⁻¹.
/// </summary>
public sealed class OftLayer : AdapterLayer
{
    private readonly AdapterModuleDict<OftRotation> oft_R = new();

    /// <summary>Wraps <paramref name="baseLayer"/> (a Linear).</summary>
    public OftLayer(nn.Module<Tensor, Tensor> baseLayer) : base(nameof(OftLayer), baseLayer) => RegisterComponents();

    /// <inheritdoc />
    public override IReadOnlyCollection<string> AdapterNames => oft_R.Names;

    /// <summary>The rotation of adapter <paramref name="adapterName"/>.</summary>
    public OftRotation Rotation(string adapterName) => oft_R[adapterName];

    /// <summary>Adds adapter <paramref name="name"/>, with r or the block size adjusted to divide in_features as the reference does.</summary>
    public void AddAdapter(string name, OftConfig config)
    {
        var inFeatures = Shape.InFeatures;
        int r, blockSize;
        if (config.R == 0)
        {
            blockSize = config.OftBlockSize;
            if (inFeatures % blockSize != 0 || blockSize > inFeatures) blockSize = Adjust(inFeatures, blockSize);
            r = (int)(inFeatures / blockSize);
        }
        else
        {
            r = config.R;
            if (inFeatures % r != 0 || r > inFeatures) r = Adjust(inFeatures, r);
            blockSize = (int)(inFeatures / r);
        }
        oft_R.Add(name, new OftRotation(r, blockSize, inFeatures, config, BaseWeight.dtype, BaseWeight.device));
    }

    /// <summary>The reference's <c>adjust_oft_parameters</c>: the divisor of <paramref name="inFeatures"/> nearest <paramref name="value"/>, the lower one on a tie.</summary>
    public static int Adjust(long inFeatures, int value)
    {
        if (value >= inFeatures) return (int)inFeatures;
        long higher = value;
        while (higher <= inFeatures && inFeatures % higher != 0) higher++;
        long lower = value;
        while (lower > 1 && inFeatures % lower != 0) lower--;
        return (int)(value - lower <= higher - value ? lower : higher);
    }

    /// <inheritdoc />
    public override Tensor forward(Tensor input)
    {
        if (BaseOnly) return base_layer.call(input);
        using var scope = torch.NewDisposeScope();
        var x = input;
        foreach (var name in ActiveAdapters)
        {
            if (MergedAdapters.Contains(name)) continue;
            x = oft_R[name].Rotate(x);
        }
        return base_layer.call(x).MoveToOuterDisposeScope();
    }

    /// <summary>Wᵀ ← M Wᵀ: the merged layer applies the rotation first.</summary>
    protected override void MergeAdapter(string adapterName)
    {
        var weight = BaseWeight;
        var rotation = oft_R[adapterName].Matrix();
        weight.copy_(torch.mm(rotation, weight.T.to(rotation.dtype)).T);
    }

    /// <summary>Wᵀ ← M⁻¹ Wᵀ (in float32 at least, as the reference inverts).</summary>
    protected override void UnmergeAdapter(string adapterName)
    {
        var weight = BaseWeight;
        var rotation = oft_R[adapterName].Matrix();
        var inverse = torch.linalg.inv(rotation.dtype == ScalarType.Float64 ? rotation : rotation.to(ScalarType.Float32)).to(rotation.dtype);
        weight.copy_(torch.mm(inverse, weight.T.to(rotation.dtype)).T);
    }

    /// <inheritdoc />
    public override void DeleteAdapter(string adapterName)
    {
        if (!oft_R.Remove(adapterName)) return;
        ActiveAdapters = ActiveAdapters.Where(a => a != adapterName).ToArray();
    }
}
