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
        var embedding = torch.nn.Embedding(count, dim, padding_idx: paddingIndex);
        if (paddingIndex is { } index) PaddingIndices.AddOrUpdate(embedding, new StrongBox<long>(index));
        return embedding;
    }

    /// <summary>The padding index <paramref name="embedding"/> was created with, if any.</summary>
    public static long? PaddingIndexOf(Embedding embedding) =>
        PaddingIndices.TryGetValue(embedding, out var box) ? box.Value : null;
}
