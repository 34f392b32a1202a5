using Peft.Tuners;
using static TorchSharp.torch;

namespace Peft.Methods.LnTuning;

/// <summary>
/// LN tuning (Zhao et al., 2023, "Tuning LayerNorm in Attention"): trains copies of the model's
/// norm layers and nothing else. Norm slots (LayerNorm and the architectures' RMS norms) get an
/// <see cref="LnTuningLayer"/>; any other layer is refused, naming it.
/// </summary>
public sealed class LnTuningMethod : TunerMethod<LnTuningConfig, LnTuningLayer>
{
    /// <inheritdoc />
    public override PeftType PeftType => LnTuningConfig.Type;

    /// <inheritdoc />
    public override string ParameterPrefix => "ln_tuning_";

    /// <summary>Norm layers, not linear ones, are what <c>"all-linear"</c> could mean here; the reference has no such option for LN tuning.</summary>
    protected override bool IsLinearForAllLinear(LayerShape shape) => false;

    /// <inheritdoc />
    protected override bool Wraps(LayerShape shape) => shape.Kind == SlotKind.Norm;

    /// <inheritdoc />
    protected override LnTuningLayer NewLayer(nn.Module<Tensor, Tensor> baseLayer, LnTuningConfig config, string path) => new(baseLayer);

    /// <inheritdoc />
    protected override void AddAdapter(LnTuningLayer layer, LnTuningConfig config, string adapterName, string path) =>
        layer.AddAdapter(adapterName);
}
