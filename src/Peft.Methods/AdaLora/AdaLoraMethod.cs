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
public sealed class AdaLoraMethod : TunerMethod<AdaLoraConfig>
{
    /// <inheritdoc />
    public override PeftType PeftType => AdaLoraConfig.Type;

    /// <inheritdoc />
    public override string ParameterPrefix => "lora_";

    /// <inheritdoc />
    protected override nn.Module<Tensor, Tensor>? CreateLayer(
        nn.Module<Tensor, Tensor> baseLayer, LayerShape shape, AdaLoraConfig config, string adapterName, string path)
    {
        if (shape.Kind is not (SlotKind.Linear or SlotKind.Conv1D)) return null;
        var layer = new AdaLoraLayer(baseLayer);
        Add(layer, config, adapterName);
        return layer;
    }

    /// <inheritdoc />
    protected override bool TryAddToLayer(nn.Module<Tensor, Tensor> existing, AdaLoraConfig config, string adapterName, string path)
    {
        if (existing is not AdaLoraLayer layer) return false;
        Add(layer, config, adapterName);
        return true;
    }

    /// <inheritdoc />
    protected override TunerAdapter CreateAdapter(PreTrainedModel model, string adapterName, AdaLoraConfig config,
        IReadOnlyList<(string Path, IAdapterLayer Layer)> layers, IReadOnlyList<(string Path, ModulesToSaveWrapper Wrapper)> saved) =>
        new AdaLoraAdapter(model, adapterName, config, ParameterPrefix, layers, saved);

    private static void Add(AdaLoraLayer layer, AdaLoraConfig config, string adapterName) =>
        layer.AddAdapter(adapterName, config.InitR, config.LoraAlpha, config.LoraDropout, config.InitLoraWeights);
}
