using Peft.Tuners;
using static TorchSharp.torch;

namespace Peft.Methods.Boft;

/// <summary>
/// BOFT (Liu et al., 2024): orthogonal fine-tuning with butterfly-factored rotations and a per-output scale.
/// Linear layers get a <see cref="BoftLayer"/> (Conv1D, Conv2d: not in this port).
/// </summary>
public sealed class BoftMethod : TunerMethod<BoftConfig, BoftLayer>
{
    /// <inheritdoc />
    public override PeftType PeftType => BoftConfig.Type;

    /// <inheritdoc />
    public override string ParameterPrefix => "boft_";

    /// <inheritdoc />
    protected override BoftLayer NewLayer(nn.Module<Tensor, Tensor> baseLayer, BoftConfig config, string path) => new(baseLayer);

    /// <inheritdoc />
    protected override void AddAdapter(BoftLayer layer, BoftConfig config, string adapterName, string path) =>
        layer.AddAdapter(adapterName, config);
}
