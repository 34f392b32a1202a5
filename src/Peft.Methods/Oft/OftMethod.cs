using Peft.Tuners;
using static TorchSharp.torch;

namespace Peft.Methods.Oft;

/// <summary>
/// OFT (Qiu et al., 2023; peft 0.21's version with Cayley–Neumann blocks): a learned block-diagonal rotation of
/// each target's input. Linear layers get an <see cref="OftLayer"/>; like the reference, GPT-2's Conv1D is not
/// supported (nor, in this port, Conv2d and Embedding).
/// </summary>
public sealed class OftMethod : TunerMethod<OftConfig, OftLayer>
{
    /// <inheritdoc />
    public override PeftType PeftType => OftConfig.Type;

    /// <inheritdoc />
    public override string ParameterPrefix => "oft_";

    /// <inheritdoc />
    protected override OftLayer NewLayer(nn.Module<Tensor, Tensor> baseLayer, OftConfig config, string path) => new(baseLayer);

    /// <inheritdoc />
    protected override void AddAdapter(OftLayer layer, OftConfig config, string adapterName, string path) =>
        layer.AddAdapter(adapterName, config);
}
