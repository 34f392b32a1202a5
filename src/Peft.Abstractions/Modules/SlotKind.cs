using Peft.Layers;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Peft;

/// <summary>The kinds of base layer an adapter can wrap.</summary>
public enum SlotKind
{
    /// <summary>Not a layer adapters know.</summary>
    Unsupported,
    /// <summary><c>torch.nn.Linear</c>: weight (out, in).</summary>
    Linear,
    /// <summary>GPT-2's <c>Conv1D</c>: weight stored (in, out).</summary>
    Conv1D,
    /// <summary><c>torch.nn.Conv2d</c>.</summary>
    Conv2d,
    /// <summary><c>torch.nn.Embedding</c>: weight (num_embeddings, embedding_dim).</summary>
    Embedding,
    /// <summary>A normalisation layer: TorchSharp's <c>LayerNorm</c> or an architecture's <see cref="INormLayer"/> (RMS norms).</summary>
    Norm,
}

/// <summary>A base layer as adapters see it: its kind and its input and output sizes.</summary>
/// <param name="Kind">Which kind of layer.</param>
/// <param name="InFeatures">Input features (channels for Conv2d, vocabulary size for Embedding, normalised features for Norm).</param>
/// <param name="OutFeatures">Output features (channels for Conv2d, embedding size for Embedding).</param>
public readonly record struct LayerShape(SlotKind Kind, long InFeatures, long OutFeatures)
{
    /// <summary>
    /// Describes <paramref name="module"/>, looking through adapter layers to the base layer they wrap.
    /// Type tests only: no reflection.
    /// </summary>
    public static LayerShape Of(nn.Module<Tensor, Tensor> module) => module switch
    {
        IAdapterLayer adapter => Of(adapter.BaseLayer),
        IQuantizedLinear quantized => new(SlotKind.Linear, quantized.InFeatures, quantized.OutFeatures),
        Linear linear => new(SlotKind.Linear, linear.weight!.shape[1], linear.weight!.shape[0]),
        Conv1D conv => new(SlotKind.Conv1D, conv.weight.shape[0], conv.weight.shape[1]),
        Conv2d conv => new(SlotKind.Conv2d, conv.weight!.shape[1], conv.weight!.shape[0]),
        Embedding embedding => new(SlotKind.Embedding, embedding.weight!.shape[0], embedding.weight!.shape[1]),
        LayerNorm or INormLayer => new(SlotKind.Norm, NormLayers.FeaturesOf(module), NormLayers.FeaturesOf(module)),
        _ => new(SlotKind.Unsupported, 0, 0),
    };
}
