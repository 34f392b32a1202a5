using Peft.Tuners;
using static TorchSharp.torch;

namespace Peft.Methods.Lora;

/// <summary>
/// A LoRA layer's factors as the weighted-adapter code needs them, whatever the layer kind: the update is
/// <c>scaling · B·A</c> with A (r, …) and B (…, r) — Linear (r, in)/(out, r), Embedding (r, vocab)/(dim, r),
/// Conv2d (r, in, kh, kw)/(out, r, 1, 1) — so flattening both past their first dimension gives one matrix product.
/// </summary>
internal interface ILoraFactors : IAdapterLayer
{
    /// <summary>lora_A (or lora_embedding_A) of <paramref name="adapterName"/>: the parameter itself.</summary>
    Tensor FactorA(string adapterName);

    /// <summary>lora_B (or lora_embedding_B) of <paramref name="adapterName"/>: the parameter itself.</summary>
    Tensor FactorB(string adapterName);

    /// <summary>alpha / r (or alpha / √r) of <paramref name="adapterName"/>.</summary>
    double ScalingOf(string adapterName);

    /// <summary>Why B·A is not this layer's update as a matrix product (a grouped convolution), or null.</summary>
    string? ProductBlocker { get; }
}
