using Peft.Tuners;
using static TorchSharp.torch;

namespace Peft.Methods.LoKr;

/// <summary>
/// LoKr (LyCORIS): a weight update that is the Kronecker product of two small factors, either of which may
/// itself be low-rank. Linear layers get a <see cref="LoKrLayer"/>; like the reference, GPT-2's Conv1D is not
/// supported (and this port does not cover Conv1d/Conv2d).
/// </summary>
public sealed class LoKrMethod : TunerMethod<LoKrConfig, LoKrLayer>
{
    /// <inheritdoc />
    public override PeftType PeftType => LoKrConfig.Type;

    /// <inheritdoc />
    public override string ParameterPrefix => "lokr_";

    /// <inheritdoc />
    protected override LoKrLayer NewLayer(nn.Module<Tensor, Tensor> baseLayer, LoKrConfig config, string path) => new(baseLayer);

    /// <inheritdoc />
    protected override void AddAdapter(LoKrLayer layer, LoKrConfig config, string adapterName, string path) =>
        layer.AddAdapter(adapterName, config.RankFor(path), config.AlphaFor(path), config);
}
