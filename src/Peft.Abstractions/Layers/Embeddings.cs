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

    /// <summary>An embedding like <c>nn.Embedding(count, dim, padding_idx)</c>.</summary>
    public static Embedding Create(long count, long dim, long? paddingIndex = null)
    {
        Embedding embedding;
        if (torch.get_default_device().type == DeviceType.META)
        {
            // TorchSharp builds nn.Embedding in C++, on the CPU and randomly initialised whatever the default device (its
            // from_pretrained too): a model built on `meta` for loading would fill a weight the checkpoint then replaces
            // (262 MB of float32 and about 0.4 s for a 32,000 × 2048 vocabulary). So the C++ module gets the fewest rows its
            // padding index allows, and the weight of the real shape is a meta one.
            var rows = paddingIndex is { } padding ? Math.Max(padding + 1, -padding) : 1;
            embedding = torch.nn.Embedding(rows, 1, padding_idx: paddingIndex);
            embedding.weight = new Parameter(torch.empty(count, dim));
        }
        else
        {
            embedding = torch.nn.Embedding(count, dim, padding_idx: paddingIndex);
        }
        if (paddingIndex is { } index) PaddingIndices.AddOrUpdate(embedding, new StrongBox<long>(index));
        return embedding;
    }

    /// <summary>The padding index <paramref name="embedding"/> was created with, if any.</summary>
    public static long? PaddingIndexOf(Embedding embedding) =>
        PaddingIndices.TryGetValue(embedding, out var box) ? box.Value : null;
}
