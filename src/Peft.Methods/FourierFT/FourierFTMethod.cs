using Peft.Tuners;
using static TorchSharp.torch;

namespace Peft.Methods.FourierFT;

/// <summary>
/// FourierFT (Gao et al., 2024): a weight update learned as a few entries of its discrete Fourier spectrum.
/// Linear and GPT-2 Conv1D layers get a <see cref="FourierFTLayer"/>.
/// </summary>
public sealed class FourierFTMethod : TunerMethod<FourierFTConfig>
{
    /// <inheritdoc />
    public override PeftType PeftType => FourierFTConfig.Type;

    /// <inheritdoc />
    public override string ParameterPrefix => "fourierft_";

    /// <inheritdoc />
    protected override nn.Module<Tensor, Tensor>? CreateLayer(
        nn.Module<Tensor, Tensor> baseLayer, LayerShape shape, FourierFTConfig config, string adapterName, string path)
    {
        if (shape.Kind is not (SlotKind.Linear or SlotKind.Conv1D)) return null;
        var layer = new FourierFTLayer(baseLayer);
        layer.AddAdapter(adapterName, config.NFrequencyFor(path), config);
        return layer;
    }

    /// <inheritdoc />
    protected override bool TryAddToLayer(nn.Module<Tensor, Tensor> existing, FourierFTConfig config, string adapterName, string path)
    {
        if (existing is not FourierFTLayer layer) return false;
        layer.AddAdapter(adapterName, config.NFrequencyFor(path), config);
        return true;
    }
}
