// The code tables of bitsandbytes (bitsandbytes/functional.py at commit 95f9af3: get_4bit_type and
// create_dynamic_map), written out here so the formats match without bitsandbytes.
using static TorchSharp.torch;

namespace Peft.Quantization;

/// <summary>The lookup tables bitsandbytes quantizes against: NF4, FP4 (4-bit) and the signed 8-bit dynamic map.</summary>
public static class Codebooks
{
    /// <summary>
    /// NF4 (QLoRA's NormalFloat4): 16 quantiles of N(0, 1) normalised to [-1, 1], with an exact zero
    /// (bitsandbytes' <c>get_4bit_type("nf4")</c>, made by <c>create_normal_map(offset=0.9677083, use_extra_value=True)</c>).
    /// The 4-bit index is the position in this table; the table is sorted.
    /// </summary>
    public static IReadOnlyList<float> Nf4 { get; } =
    [
        -1.0f, -0.6961928009986877f, -0.5250730514526367f, -0.39491748809814453f,
        -0.28444138169288635f, -0.18477343022823334f, -0.09105003625154495f, 0.0f,
        0.07958029955625534f, 0.16093020141124725f, 0.24611230194568634f, 0.33791524171829224f,
        0.44070982933044434f, 0.5626170039176941f, 0.7229568362236023f, 1.0f,
    ];

    /// <summary>
    /// FP4 (1 sign, 2 exponent, 1 mantissa bit) in bit-pattern order, as bitsandbytes lists it
    /// (<c>[0, 0.0625, 8, 12, 4, 6, 2, 3, -0, -0.0625, -8, -12, -4, -6, -2, -3]</c>) divided by its largest
    /// magnitude, 12. Not sorted: index 0b0011 is 1.0, 0b1000 is -0.
    /// </summary>
    public static IReadOnlyList<float> Fp4 { get; } = Normalised([0f, 0.0625f, 8f, 12f, 4f, 6f, 2f, 3f, -0f, -0.0625f, -8f, -12f, -4f, -6f, -2f, -3f]);

    /// <summary>The 4-bit table of <paramref name="type"/> (<see cref="QuantType.Nf4"/> or <see cref="QuantType.Fp4"/>).</summary>
    /// <exception cref="ArgumentException"><paramref name="type"/> is not a 4-bit type.</exception>
    public static IReadOnlyList<float> FourBit(QuantType type) => type switch
    {
        QuantType.Nf4 => Nf4,
        QuantType.Fp4 => Fp4,
        _ => throw new ArgumentException($"{type} is not a 4-bit type (nf4, fp4).", nameof(type)),
    };

    /// <summary>
    /// bitsandbytes' <c>create_dynamic_map(signed=True, max_exponent_bits=7, total_bits=8)</c>: 256 sorted values
    /// in [-1, 1], dense near zero, used by <c>quantize_blockwise</c> (the second level of double quantization).
    /// For exponent i in 0..6 the midpoints of <c>linspace(0.1, 1, 2^i + 1)</c> (float32) scaled by 10^(i-6), both
    /// signs; then 0 and 1.0. Computed with the same float32 torch operations, so the values are bit-identical.
    /// </summary>
    public static Tensor DynamicMap()
    {
        const int maxExponentBits = 7;
        var parts = new List<float>();
        for (int i = 0; i < maxExponentBits; i++)
        {
            var fractionItems = (1 << i) + 1;
            using var boundaries = linspace(0.1, 1, fractionItems, dtype: ScalarType.Float32);
            using var means = (boundaries.narrow(0, 0, fractionItems - 1) + boundaries.narrow(0, 1, fractionItems - 1)) / 2.0;
            // 10 ** (-(max_exponent_bits - 1) + i) is a Python float; the product is computed in float32.
            using var positive = means * Math.Pow(10, -(maxExponentBits - 1) + i);
            var values = positive.data<float>().ToArray();
            parts.AddRange(values);
            parts.AddRange(values.Select(v => -v));
        }
        parts.Add(0f);
        parts.Add(1.0f);
        if (parts.Count != 256) throw new InvalidOperationException($"the dynamic map has {parts.Count} values, not 256.");
        parts.Sort();
        return tensor(parts.ToArray());
    }

    private static float[] Normalised(float[] values)
    {
        var max = values.Max(Math.Abs);
        return values.Select(v => v / max).ToArray();
    }
}
