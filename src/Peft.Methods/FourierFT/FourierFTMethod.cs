using Peft.Tuners;
using static TorchSharp.torch;

namespace Peft.Methods.FourierFT;

/// <summary>
/// FourierFT (Gao et al., 2024): a weight update learned as a few entries of its discrete Fourier spectrum.
/// Linear and GPT-2 Conv1D layers get a <see cref="FourierFTLayer"/>.
/// </summary>
public sealed class FourierFTMethod : TunerMethod<FourierFTConfig, FourierFTLayer>
{
    /// <inheritdoc />
    public override PeftType PeftType => FourierFTConfig.Type;

    /// <inheritdoc />
    public override string ParameterPrefix => "fourierft_";

    /// <inheritdoc />
    protected override bool Wraps(LayerShape shape) => shape.Kind is SlotKind.Linear or SlotKind.Conv1D;

    /// <inheritdoc />
    protected override FourierFTLayer NewLayer(nn.Module<Tensor, Tensor> baseLayer, FourierFTConfig config, string path) => new(baseLayer);

    /// <inheritdoc />
    protected override void AddAdapter(FourierFTLayer layer, FourierFTConfig config, string adapterName, string path) =>
        layer.AddAdapter(adapterName, config.NFrequencyFor(path), config);
}
