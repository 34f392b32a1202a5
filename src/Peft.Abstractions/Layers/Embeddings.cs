using System.Runtime.CompilerServices;
using TorchSharp;
using TorchSharp.Modules;

namespace Peft.Layers;

/// <summary>
/// Creates token embeddings and remembers their padding index, which TorchSharp's
/// <see cref="Embedding"/> does not expose but adapters need (the reference's LoRA embedding passes
/// <c>padding_idx</c> on, so the padding row of its update receives no gradient).
/// </summary>
public static class Embeddings
{
    private static readonly ConditionalWeakTable<Embedding, StrongBox<long>> PaddingIndices = new();

    /// <summary>
    /// An embedding like <c>nn.Embedding(count, dim, padding_idx)</c>; built with the default device on <c>meta</c> (an
    /// initialisation-free build for loading), its weight is a meta tensor and nothing is allocated or initialised.
    /// </summary>
    public static Embedding Create(long count, long dim, long? paddingIndex = null)
    {
        Embedding embedding;
        if (torch.get_default_device().type == DeviceType.META)
        {
            // A model built on `meta` for loading would fill a weight the checkpoint then replaces (262 MB of float32 and
            // about 0.4 s for a 32,000 × 2048 vocabulary): the weight of the real shape is a meta one.
            embedding = Placeholder(paddingIndex);
            embedding.weight = new Parameter(torch.empty(count, dim));
        }
        else
        {
            embedding = torch.nn.Embedding(count, dim, padding_idx: paddingIndex);
        }
        if (paddingIndex is { } index) PaddingIndices.AddOrUpdate(embedding, new StrongBox<long>(index));
        return embedding;
    }

    /// <summary>
    /// An embedding module to give a weight to. TorchSharp builds nn.Embedding in C++, on the CPU and randomly initialised
    /// whatever the device asked for (its from_pretrained too), so it gets the fewest rows its padding index allows.
    /// </summary>
    private static Embedding Placeholder(long? paddingIndex) =>
        torch.nn.Embedding(paddingIndex is { } padding ? Math.Max(padding + 1, -padding) : 1, 1, padding_idx: paddingIndex);

    /// <summary>
    /// The base embedding of <paramref name="embedding"/>, looking through adapter layers and modules_to_save wrappers (a
    /// tied head keeps reading the original, as the reference's does).
    /// </summary>
    /// <exception cref="NotSupportedException">Under the wrappers there is no embedding.</exception>
    public static Embedding BaseOf(torch.nn.Module<torch.Tensor, torch.Tensor> embedding) => embedding switch
    {
        IAdapterLayer adapter => BaseOf(adapter.BaseLayer),
        Tuners.ModulesToSaveWrapper wrapper => BaseOf(wrapper.Original),
        Embedding plain => plain,
        _ => throw new NotSupportedException($"{embedding.GetType().Name} is not an embedding."),
    };

    /// <summary>The padding index <paramref name="embedding"/> was created with, if any.</summary>
    public static long? PaddingIndexOf(Embedding embedding) =>
        PaddingIndices.TryGetValue(embedding, out var box) ? box.Value : null;

    /// <summary>
    /// A second embedding module over <paramref name="source"/>'s weight, as transformers 5 ties T5's and BART's
    /// <c>encoder.embed_tokens</c> and <c>decoder.embed_tokens</c> to <c>shared</c>: its own module (an adapter slot of
    /// its own), the same parameter (one gradient, one optimizer entry, counted once), the same padding index.
    /// </summary>
    public static Embedding Tied(Embedding source)
    {
        var weight = RegisteredWeight(source);
        var padding = PaddingIndexOf(source);
        var tied = Placeholder(padding);
        tied.weight = weight;
        if (padding is { } index) PaddingIndices.AddOrUpdate(tied, new StrongBox<long>(index));
        return tied;
    }

    /// <summary>
    /// The <c>weight</c> parameter object <paramref name="module"/> registered. TorchSharp's <c>weight</c> getter of a
    /// native module returns a new handle on each call, and <c>named_parameters</c> tells parameters apart by handle:
    /// a module tied to this very object lists the weight once (as PyTorch's <c>named_parameters</c> does), one tied
    /// to a getter's handle lists it twice.
    /// </summary>
    /// <exception cref="ArgumentException">The module registered no <c>weight</c>.</exception>
    public static TorchSharp.Modules.Parameter RegisteredWeight(torch.nn.Module module)
    {
        foreach (var (name, parameter) in module.named_parameters(recurse: false))
        {
            if (name == "weight") return parameter;
        }
        throw new ArgumentException($"{module.GetName()} has no weight parameter.", nameof(module));
    }
}
