using Peft.Tuners;
using static TorchSharp.torch;

namespace Peft.Methods.LnTuning;

/// <summary>
/// LN tuning (Zhao et al., 2023, "Tuning LayerNorm in Attention"): trains copies of the model's
/// norm layers and nothing else. Norm slots (LayerNorm and the architectures' RMS norms) get an
/// <see cref="LnTuningLayer"/>; any other layer is refused, naming it.
/// </summary>
public sealed class LnTuningMethod : TunerMethod<LnTuningConfig>
{
    /// <inheritdoc />
    public override PeftType PeftType => LnTuningConfig.Type;

    /// <inheritdoc />
    public override string ParameterPrefix => "ln_tuning_";

    /// <summary>Norm layers, not linear ones, are what <c>"all-linear"</c> could mean here; the reference has no such option for LN tuning.</summary>
    protected override bool IsLinearForAllLinear(LayerShape shape) => false;

    /// <inheritdoc />
    protected override nn.Module<Tensor, Tensor>? CreateLayer(
        nn.Module<Tensor, Tensor> baseLayer, LayerShape shape, LnTuningConfig config, string adapterName, string path)
    {
        if (shape.Kind != SlotKind.Norm) return null;
        var layer = new LnTuningLayer(baseLayer);
        layer.AddAdapter(adapterName);
        return layer;
    }

    /// <inheritdoc />
    protected override bool TryAddToLayer(nn.Module<Tensor, Tensor> existing, LnTuningConfig config, string adapterName, string path)
    {
        if (existing is not LnTuningLayer layer) return false;
        layer.AddAdapter(adapterName);
        return true;
    }
}
