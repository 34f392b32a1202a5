using Peft.Modeling;
using Peft.Tuners;
using static TorchSharp.torch;

namespace Peft.Methods.Lora;

/// <summary>
/// Low-rank adaptation (Hu et al., 2021): the worked example of a <see cref="TunerMethod{TConfig}"/>.
/// Linear and Conv1D layers get a <see cref="LoraLayer"/>, Conv2d layers a <see cref="LoraConv2d"/>, embeddings a <see cref="LoraEmbedding"/>.
/// </summary>
public sealed class LoraMethod : TunerMethod<LoraConfig>
{
    /// <inheritdoc />
    public override PeftType PeftType => PeftType.Lora;

    /// <inheritdoc />
    public override string ParameterPrefix => "lora_";

    /// <inheritdoc />
    protected override bool SupportsQuantizedBase => true;

    /// <inheritdoc />
    protected override nn.Module<Tensor, Tensor>? CreateLayer(
        nn.Module<Tensor, Tensor> baseLayer, LayerShape shape, LoraConfig config, string adapterName, string path)
    {
        switch (shape.Kind)
        {
            case SlotKind.Linear or SlotKind.Conv1D:
                var layer = new LoraLayer(baseLayer, config.FanInFanOut);
                Add(layer, config, adapterName, path);
                return layer;
            case SlotKind.Conv2d or SlotKind.Embedding when config.UseDora:
                throw new PeftConfigException($"`use_dora` is not supported on the {shape.Kind} layer '{path}' yet; DoRA applies to Linear and Conv1D layers here.");
            case SlotKind.Conv2d:
                var conv = new LoraConv2d(baseLayer);
                conv.AddAdapter(adapterName, config.RankFor(path), config.ScalingFor(path), config.LoraDropout, config.LoraBias, config.Init, path);
                return conv;
            case SlotKind.Embedding:
                var embedding = new LoraEmbedding(baseLayer);
                Add(embedding, config, adapterName, path);
                return embedding;
            default:
                return null;
        }
    }

    /// <inheritdoc />
    protected override bool TryAddToLayer(nn.Module<Tensor, Tensor> existing, LoraConfig config, string adapterName, string path)
    {
        switch (existing)
        {
            case LoraLayer layer:
                Add(layer, config, adapterName, path);
                return true;
            case LoraEmbedding or LoraConv2d when config.UseDora:
                throw new PeftConfigException($"`use_dora` is not supported on the {LayerShape.Of(existing).Kind} layer '{path}' yet; DoRA applies to Linear and Conv1D layers here.");
            case LoraEmbedding embedding:
                Add(embedding, config, adapterName, path);
                return true;
            case LoraConv2d conv:
                conv.AddAdapter(adapterName, config.RankFor(path), config.ScalingFor(path), config.LoraDropout, config.LoraBias, config.Init, path);
                return true;
            default:
                return false;
        }
    }

    /// <inheritdoc />
    protected override TunerAdapter CreateAdapter(PreTrainedModel model, string adapterName, LoraConfig config,
        IReadOnlyList<(string Path, IAdapterLayer Layer)> layers, IReadOnlyList<(string Path, ModulesToSaveWrapper Wrapper)> saved) =>
        new LoraAdapter(model, adapterName, config, ParameterPrefix, layers, saved);

    private static void Add(LoraLayer layer, LoraConfig config, string adapterName, string path) =>
        layer.AddAdapter(adapterName, config.RankFor(path), config.ScalingFor(path), config.LoraDropout, config.LoraBias, config.Init, config.UseDora, config.PissaIterations ?? 0);

    private static void Add(LoraEmbedding layer, LoraConfig config, string adapterName, string path) =>
        layer.AddAdapter(adapterName, config.RankFor(path), config.ScalingFor(path), config.Init);
}
