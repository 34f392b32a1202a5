using Peft.Tuners;
using static TorchSharp.torch;

namespace Peft.Methods.LoKr;

/// <summary>
/// LoKr (LyCORIS): a weight update that is the Kronecker product of two small factors, either of which may
/// itself be low-rank. Linear layers get a <see cref="LoKrLayer"/>; like the reference, GPT-2's Conv1D is not
/// supported (and this port does not cover Conv1d/Conv2d).
/// </summary>
public sealed class LoKrMethod : TunerMethod<LoKrConfig>
{
    /// <inheritdoc />
    public override PeftType PeftType => LoKrConfig.Type;

    /// <inheritdoc />
    public override string ParameterPrefix => "lokr_";

    /// <inheritdoc />
    protected override nn.Module<Tensor, Tensor>? CreateLayer(
        nn.Module<Tensor, Tensor> baseLayer, LayerShape shape, LoKrConfig config, string adapterName, string path)
    {
        if (shape.Kind != SlotKind.Linear) return null;
        var layer = new LoKrLayer(baseLayer);
        layer.AddAdapter(adapterName, config.RankFor(path), config.AlphaFor(path), config);
        return layer;
    }

    /// <inheritdoc />
    protected override bool TryAddToLayer(nn.Module<Tensor, Tensor> existing, LoKrConfig config, string adapterName, string path)
    {
        if (existing is not LoKrLayer layer) return false;
        layer.AddAdapter(adapterName, config.RankFor(path), config.AlphaFor(path), config);
        return true;
    }
}
