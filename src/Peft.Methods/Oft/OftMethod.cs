using Peft.Tuners;
using static TorchSharp.torch;

namespace Peft.Methods.Oft;

/// <summary>
/// OFT (Qiu et al., 2023; peft 0.21's version with Cayley–Neumann blocks): a learned block-diagonal rotation of
/// each target's input. Linear layers get an <see cref="OftLayer"/>; like the reference, GPT-2's Conv1D is not
/// supported (nor, in this port, Conv2d and Embedding).
/// </summary>
public sealed class OftMethod : TunerMethod<OftConfig>
{
    /// <inheritdoc />
    public override PeftType PeftType => OftConfig.Type;

    /// <inheritdoc />
    public override string ParameterPrefix => "oft_";

    /// <inheritdoc />
    protected override nn.Module<Tensor, Tensor>? CreateLayer(
        nn.Module<Tensor, Tensor> baseLayer, LayerShape shape, OftConfig config, string adapterName, string path)
    {
        if (shape.Kind != SlotKind.Linear) return null;
        var layer = new OftLayer(baseLayer);
        layer.AddAdapter(adapterName, config);
        return layer;
    }

    /// <inheritdoc />
    protected override bool TryAddToLayer(nn.Module<Tensor, Tensor> existing, OftConfig config, string adapterName, string path)
    {
        if (existing is not OftLayer layer) return false;
        layer.AddAdapter(adapterName, config);
        return true;
    }
}
