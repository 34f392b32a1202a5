using TorchSharp;
using static TorchSharp.torch;

namespace Peft.Backbones.Bart;

/// <summary>
/// BART's <c>BartScaledWordEmbedding</c> (the lookup times <c>embed_scale</c>) over a TorchSharp embedding, which cannot
/// carry the factor itself.
/// </summary>
internal static class ScaledEmbeddings
{
    /// <summary>
    /// Embeds <paramref name="ids"/> with <paramref name="embedTokens"/> as the reference's scaled embedding computes it:
    /// the module's whole output is scaled when it is the embedding (or a modules_to_save copy of one, itself a scaled
    /// embedding in the reference), but an adapter layer's update is not, since the reference's LoRA embedding adds it
    /// to the scaled base output: <c>base(x)·s + Δ(x)</c> = the adapter's output + (s − 1)·base(x).
    /// </summary>
    public static Tensor Embed(nn.Module<Tensor, Tensor> embedTokens, Tensor ids, double scale)
    {
        var embeds = embedTokens.call(ids);
        if (scale == 1.0) return embeds;
        if (embedTokens is not IAdapterLayer adapter) return embeds * scale;
        return embeds + (scale - 1.0) * Peft.Layers.Embeddings.BaseOf(adapter.BaseLayer).call(ids);
    }
}
