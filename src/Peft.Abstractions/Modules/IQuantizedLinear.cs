using static TorchSharp.torch;

namespace Peft;

/// <summary>
/// A frozen Linear layer whose weight is stored quantized (8-bit or 4-bit, as bitsandbytes stores it) and
/// dequantized when used. Adapters see it as a Linear of (<see cref="OutFeatures"/>, <see cref="InFeatures"/>);
/// they read its weight through <see cref="Dequantize"/> and write a merged one through <see cref="Requantize"/>.
/// </summary>
public interface IQuantizedLinear
{
    /// <summary>Input features.</summary>
    long InFeatures { get; }

    /// <summary>Output features.</summary>
    long OutFeatures { get; }

    /// <summary>The storage format's name (<c>int8</c>, <c>nf4</c>, <c>fp4</c>).</summary>
    string Format { get; }

    /// <summary>The dtype forward computes in and <see cref="Dequantize"/> returns.</summary>
    ScalarType ComputeDType { get; }

    /// <summary>Where the weight is stored.</summary>
    Device Device { get; }

    /// <summary>The registered <c>weight</c> parameter as stored (packed uint8 for 4-bit, int8 for 8-bit).</summary>
    Tensor StoredWeight { get; }

    /// <summary>How many weight values one element of <see cref="StoredWeight"/> holds: 2 for 4-bit (two per byte), 1 for int8.</summary>
    int ValuesPerStoredElement { get; }

    /// <summary>The layer's bias (not quantized), or null.</summary>
    Tensor? Bias { get; }

    /// <summary>The weight (out, in) in <see cref="ComputeDType"/>: a new tensor, dequantized now.</summary>
    Tensor Dequantize();

    /// <summary>
    /// Replaces the stored weight by <paramref name="weight"/> (out, in) quantized in this layer's format, and returns
    /// the largest absolute rounding error of the new stored weight against <paramref name="weight"/>.
    /// </summary>
    double Requantize(Tensor weight);
}
