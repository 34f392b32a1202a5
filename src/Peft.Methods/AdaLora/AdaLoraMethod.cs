using Peft.Modeling;
using Peft.Tuners;
using static TorchSharp.torch;

namespace Peft.Methods.AdaLora;

/// <summary>
/// Adaptive budget allocation for LoRA (Zhang et al., 2023): SVD-form adapters whose ranks a
/// <see cref="RankAllocator"/> prunes during training. Linear and Conv1D layers get an
/// <see cref="AdaLoraLayer"/>. The training loop must call the adapter after each optimizer step
/// (<c>Peft.Training.Trainer</c> does, through <c>IAdapter.AfterOptimizerStep</c>).
/// </summary>
public sealed class AdaLoraMethod : TunerMethod<AdaLoraConfig, AdaLoraLayer>
{
    /// <inheritdoc />
    public override PeftType PeftType => AdaLoraConfig.Type;

    /// <inheritdoc />
    public override string ParameterPrefix => "lora_";

    /// <inheritdoc />
    protected override bool Wraps(LayerShape shape) => shape.Kind is SlotKind.Linear or SlotKind.Conv1D;

    /// <inheritdoc />
    protected override AdaLoraLayer NewLayer(nn.Module<Tensor, Tensor> baseLayer, AdaLoraConfig config, string path) => new(baseLayer);

    /// <inheritdoc />
    protected override void AddAdapter(AdaLoraLayer layer, AdaLoraConfig config, string adapterName, string path) =>
        layer.AddAdapter(adapterName, config.InitR, config.LoraAlpha, config.LoraDropout, config.InitLoraWeights);

    /// <inheritdoc />
    protected override TunerAdapter CreateAdapter(PreTrainedModel model, string adapterName, AdaLoraConfig config,
        IReadOnlyList<(string Path, IAdapterLayer Layer)> layers, IReadOnlyList<(string Path, ModulesToSaveWrapper Wrapper)> saved) =>
        new AdaLoraAdapter(model, adapterName, config, ParameterPrefix, layers, saved);
}
