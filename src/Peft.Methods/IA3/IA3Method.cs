using Peft.Plugins;
using Peft.Tuners;
using static TorchSharp.torch;

namespace Peft.Methods.IA3;

/// <summary>
/// Infused Adapter by Inhibiting and Amplifying Inner Activations (Liu et al., 2022): learned
/// vectors that rescale activations. Linear and Conv1D layers get an <see cref="IA3Layer"/>.
/// </summary>
public sealed class IA3Method : TunerMethod<IA3Config>
{
    /// <inheritdoc />
    public override PeftType PeftType => PeftType.IA3;

    /// <inheritdoc />
    public override string ParameterPrefix => "ia3_";

    /// <summary>IA3 declares no per-architecture defaults here; the config must name its targets.</summary>
    protected override IReadOnlyList<string> DefaultTargets(IArchitecture architecture) => [];

    /// <inheritdoc />
    protected override nn.Module<Tensor, Tensor>? CreateLayer(
        nn.Module<Tensor, Tensor> baseLayer, LayerShape shape, IA3Config config, string adapterName, string path)
    {
        if (shape.Kind is not (SlotKind.Linear or SlotKind.Conv1D)) return null;
        var layer = new IA3Layer(baseLayer, config.IsFeedforward(path), config.FanInFanOut);
        layer.AddAdapter(adapterName, config.InitIA3Weights);
        return layer;
    }

    /// <inheritdoc />
    protected override bool TryAddToLayer(nn.Module<Tensor, Tensor> existing, IA3Config config, string adapterName, string path)
    {
        if (existing is not IA3Layer layer) return false;
        layer.AddAdapter(adapterName, config.InitIA3Weights);
        return true;
    }
}
