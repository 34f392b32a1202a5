using Peft.Tuners;
using static TorchSharp.torch;

namespace Peft.Methods.Boft;

/// <summary>
/// BOFT (Liu et al., 2024): orthogonal fine-tuning with butterfly-factored rotations and a per-output scale.
/// Linear layers get a <see cref="BoftLayer"/> (Conv1D, Conv2d: not in this port).
/// </summary>
public sealed class BoftMethod : TunerMethod<BoftConfig>
{
    /// <inheritdoc />
    public override PeftType PeftType => BoftConfig.Type;

    /// <inheritdoc />
    public override string ParameterPrefix => "boft_";

    /// <inheritdoc />
    protected override nn.Module<Tensor, Tensor>? CreateLayer(
        nn.Module<Tensor, Tensor> baseLayer, LayerShape shape, BoftConfig config, string adapterName, string path)
    {
        if (shape.Kind != SlotKind.Linear) return null;
        var layer = new BoftLayer(baseLayer);
        layer.AddAdapter(adapterName, config);
        return layer;
    }

    /// <inheritdoc />
    protected override bool TryAddToLayer(nn.Module<Tensor, Tensor> existing, BoftConfig config, string adapterName, string path)
    {
        if (existing is not BoftLayer layer) return false;
        layer.AddAdapter(adapterName, config);
        return true;
    }
}
