using Peft.Tuners;
using static TorchSharp.torch;

namespace Peft.Methods.LoHa;

/// <summary>
/// LoHa (Hyeon-Woo et al., 2021, as in LyCORIS): a weight update that is the Hadamard product of two
/// low-rank products. Linear layers get a <see cref="LoHaLayer"/>; like the reference, GPT-2's Conv1D is not
/// supported (and this port does not cover Conv1d/Conv2d).
/// </summary>
public sealed class LoHaMethod : TunerMethod<LoHaConfig, LoHaLayer>
{
    /// <inheritdoc />
    public override PeftType PeftType => LoHaConfig.Type;

    /// <inheritdoc />
    public override string ParameterPrefix => "hada_";

    /// <inheritdoc />
    protected override LoHaLayer NewLayer(nn.Module<Tensor, Tensor> baseLayer, LoHaConfig config, string path) => new(baseLayer);

    /// <inheritdoc />
    protected override void AddAdapter(LoHaLayer layer, LoHaConfig config, string adapterName, string path) =>
        layer.AddAdapter(adapterName, config.RankFor(path), config.AlphaFor(path), config);
}
