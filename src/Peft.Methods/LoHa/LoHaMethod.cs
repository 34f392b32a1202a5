using Peft.Tuners;
using static TorchSharp.torch;

namespace Peft.Methods.LoHa;

/// <summary>
/// LoHa (Hyeon-Woo et al., 2021, as in LyCORIS): a weight update that is the Hadamard product of two
/// low-rank products. Linear layers get a <see cref="LoHaLayer"/>; like the reference, GPT-2's Conv1D is not
/// supported (and this port does not cover Conv1d/Conv2d).
/// </summary>
public sealed class LoHaMethod : TunerMethod<LoHaConfig>
{
    /// <inheritdoc />
    public override PeftType PeftType => LoHaConfig.Type;

    /// <inheritdoc />
    public override string ParameterPrefix => "hada_";

    /// <inheritdoc />
    protected override nn.Module<Tensor, Tensor>? CreateLayer(
        nn.Module<Tensor, Tensor> baseLayer, LayerShape shape, LoHaConfig config, string adapterName, string path)
    {
        if (shape.Kind != SlotKind.Linear) return null;
        var layer = new LoHaLayer(baseLayer);
        layer.AddAdapter(adapterName, config.RankFor(path), config.AlphaFor(path), config);
        return layer;
    }

    /// <inheritdoc />
    protected override bool TryAddToLayer(nn.Module<Tensor, Tensor> existing, LoHaConfig config, string adapterName, string path)
    {
        if (existing is not LoHaLayer layer) return false;
        layer.AddAdapter(adapterName, config.RankFor(path), config.AlphaFor(path), config);
        return true;
    }
}
