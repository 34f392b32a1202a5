using Peft.Quantization;
using TorchSharp;
using static TorchSharp.torch;

namespace Peft.Tests.Quantization;

/// <summary>
/// The formats against bitsandbytes' definitions (bitsandbytes/functional.py and backends/default/ops.py, commit
/// 95f9af3): the tables derived independently from how bitsandbytes builds them, the packing and block layout, and
/// quantize → dequantize errors against the figures bitsandbytes' own test asserts (tests/test_functional.py,
/// test_4bit_quant: mean ± 7σ over 200 runs of randn(1024, 1024)).
/// </summary>
public class FormatTests
{
    /// <summary>
    /// create_normal_map(offset=0.9677083, use_extra_value=True): norm.ppf of 9 float32 linspace points from offset to
    /// 0.5 (the last dropped) for the positive side, 8 for the negative, plus 0, divided by the largest.
    /// </summary>
    [Fact]
    public void Nf4IsTheNormalMapBitsandbytesBuilds()
    {
        const double offset = 0.9677083;
        var positive = linspace(offset, 0.5, 9, dtype: ScalarType.Float32).data<float>().ToArray()[..^1].Select(p => NormalQuantile(p));
        var negative = linspace(offset, 0.5, 8, dtype: ScalarType.Float32).data<float>().ToArray()[..^1].Select(p => -NormalQuantile(p));
        var values = positive.Concat(negative).Append(0.0).OrderBy(v => v).ToArray();
        var max = values.Max();
        Assert.Equal(16, Codebooks.Nf4.Count);
        for (int i = 0; i < 16; i++) Assert.True(Math.Abs(values[i] / max - Codebooks.Nf4[i]) < 1e-6, $"NF4[{i}] = {Codebooks.Nf4[i]}, the normal map gives {values[i] / max}");
        // And value by value as bitsandbytes hard-codes them (get_4bit_type("nf4")).
        Assert.Equal(-0.6961928009986877f, Codebooks.Nf4[1]);
        Assert.Equal(0.07958029955625534f, Codebooks.Nf4[8]);
        Assert.Equal(0.7229568362236023f, Codebooks.Nf4[14]);
    }

    /// <summary>FP4 in bit-pattern order: sign bit 3; exponent bits 2–1 (0: subnormal m·0.0625; e: 2^(4−e)·(1 + m/2)); over 12.</summary>
    [Fact]
    public void Fp4IsTheOneTwoOneFloatInBitPatternOrder()
    {
        for (int code = 0; code < 16; code++)
        {
            var sign = (code & 0b1000) != 0 ? -1.0 : 1.0;
            var (e, m) = ((code >> 1) & 0b11, code & 1);
            var magnitude = e == 0 ? m * 0.0625 : Math.Pow(2, 4 - e) * (1 + m / 2.0);
            Assert.Equal((float)(sign * magnitude / 12), Codebooks.Fp4[code]);
        }
        Assert.Equal(1.0f, Codebooks.Fp4[0b0011]);
        Assert.True(float.IsNegative(Codebooks.Fp4[0b1000]), "code 0b1000 is -0");
    }

    [Fact]
    public void TheDynamicMapIsSignedEightBitWithZeroAndOne()
    {
        var map = Codebooks.DynamicMap().data<float>().ToArray();
        Assert.Equal(256, map.Length);
        Assert.True(map.Zip(map.Skip(1)).All(p => p.First <= p.Second), "sorted");
        Assert.Contains(0f, map);
        Assert.Equal(1.0f, map[^1]);
        // Exponent 6: midpoints of linspace(0.1, 1, 65): the largest below 1 is (0.9859375 + 1) / 2, the smallest (0.1 + 0.1140625) / 2.
        Assert.Equal(0.99296875f, map[^2], 6);
        Assert.Equal(-0.99296875f, map[0], 6);
        // Exponent 0: the single midpoint 0.55 of linspace(0.1, 1, 2), times 1e-6.
        Assert.Equal(5.5e-7f, map.Where(v => v > 0).Min(), 12);
        Assert.Equal(127, map.Count(v => v > 0 && v < 1));
    }

    /// <summary>bitsandbytes packs the first value of each pair in the high nibble: <c>(q[0::2] &lt;&lt; 4) | q[1::2]</c>.</summary>
    [Fact]
    public void TwoCodesShareAByteFirstInTheHighNibble()
    {
        // Block absmax 1: 1 → NF4 code 15, −1 → 0, 0 → 7, 0.16 → 9 (nearest 0.1609).
        var weight = tensor(new float[] { 1, -1, 0, 1, 0.16f, -1 });
        var (packed, absmax) = Blockwise.Quantize4Bit(weight, QuantType.Nf4);
        Assert.Equal(new long[] { 3, 1 }, packed.shape);
        Assert.Equal(ScalarType.Byte, packed.dtype);
        Assert.Equal(new byte[] { 0xF0, 0x7F, 0x90 }, packed.data<byte>().ToArray());
        Assert.Equal(1f, absmax.item<float>());
        // FP4: 1.0 is code 0b0011, −1.0 is 0b1011.
        var (fp4, _) = Blockwise.Quantize4Bit(tensor(new float[] { 1, -1 }), QuantType.Fp4);
        Assert.Equal(new byte[] { 0x3B }, fp4.data<byte>().ToArray());
    }

    /// <summary>Blocks of 64 consecutive values of the flattened tensor, one float32 absmax each; a short last block is one more block.</summary>
    [Fact]
    public void EveryBlockOfSixtyFourHasItsAbsmax()
    {
        var weight = zeros(2, 65);                 // 130 values: blocks [0, 64), [64, 128), [128, 130)
        weight[0, 3] = tensor(2f);                 // flat 3, block 0
        weight[0, 64] = tensor(-5f);               // flat 64, block 1
        weight[1, 63] = tensor(0.5f);              // flat 128, block 2
        var (packed, absmax) = Blockwise.Quantize4Bit(weight, QuantType.Nf4);
        Assert.Equal(new[] { 2f, 5f, 0.5f }, absmax.data<float>().ToArray());
        Assert.Equal(65, packed.numel());
        var back = Blockwise.Dequantize4Bit(packed, absmax, tensor(Codebooks.Nf4.ToArray()), [2, 65], ScalarType.Float32);
        Assert.True(back.equal(weight).all().item<bool>(), "block maxima and zeros are exact codes");
    }

    [Theory]
    [InlineData(QuantType.Nf4, 0.072798, 0.000074, 0.203339, 0.000340)]
    [InlineData(QuantType.Fp4, 0.096543, 0.000111, 0.260125, 0.000379)]
    public void RoundTripErrorIsBitsandbytesOwn(QuantType type, double errMean, double errStd, double relMean, double relStd)
    {
        torch.manual_seed(42);
        var a = randn(1024, 1024);
        var (packed, state) = QuantState4Bit.Quantize(a, type, doubleQuant: false);
        var back = state.Dequantize(packed, ScalarType.Float32);
        var err = (a - back).abs();
        var meanErr = err.mean().item<float>();
        var relErr = (err / (a.abs() + 1e-8)).mean().item<float>();
        Assert.True(Math.Abs(meanErr - errMean) < 7 * errStd, $"{type}: mean |error| {meanErr}, bitsandbytes {errMean} ± 7·{errStd}");
        Assert.True(Math.Abs(relErr - relMean) < 7 * relStd, $"{type}: mean relative error {relErr}, bitsandbytes {relMean} ± 7·{relStd}");
        // No value moves by more than half the widest gap of the table times its block's absmax.
        var sorted = Codebooks.FourBit(type).Order().ToArray();
        var halfGap = sorted.Zip(sorted.Skip(1)).Max(p => p.Second - p.First) / 2;
        var blockMax = a.reshape(-1, 64).abs().amax([1], keepdim: true);
        Assert.True((err.reshape(-1, 64) <= blockMax * halfGap * (1 + 1e-6)).all().item<bool>());
    }

    /// <summary>
    /// compress_statistics: offset = absmax.mean(), absmax − offset quantized against the dynamic map in blocks of 256.
    /// Each absmax comes back within half the map's widest gap times its block's nested absmax.
    /// </summary>
    [Fact]
    public void DoubleQuantizationStoresTheAbsmaxInEightBitsAroundTheirMean()
    {
        torch.manual_seed(7);
        var a = randn(300, 256) * 0.05;   // 1200 blocks of 64 → 5 nested blocks (the last one short)
        var (_, plain) = QuantState4Bit.Quantize(a, QuantType.Nf4, doubleQuant: false);
        var (_, nested) = QuantState4Bit.Quantize(a, QuantType.Nf4, doubleQuant: true);
        Assert.True(nested.Nested);
        Assert.Equal(ScalarType.Byte, nested.Absmax.dtype);
        Assert.Equal(1200, nested.Absmax.numel());
        Assert.Equal(5, nested.NestedAbsmax!.numel());
        Assert.Equal(plain.Absmax.mean().item<float>(), nested.Offset);
        var map = Codebooks.DynamicMap().data<float>().ToArray();
        var halfGap = map.Zip(map.Skip(1)).Max(p => p.Second - p.First) / 2;
        var perBlock = nested.NestedAbsmax.repeat_interleave(256)[..1200];
        var error = (nested.BlockAbsmax() - plain.Absmax).abs();
        Assert.True((error <= perBlock * halfGap + 1e-7).all().item<bool>(), $"largest absmax error {error.max().item<float>()}");
    }

    /// <summary>int8_vectorwise_quant: SCB is each row's absmax, codes round(W·127/SCB); dequantized within half a step (SCB/254).</summary>
    [Fact]
    public void Int8IsRowWiseAbsmaxWithinHalfAStep()
    {
        torch.manual_seed(3);
        var w = randn(48, 80);
        var (cb, scb) = Int8Rowwise.Quantize(w);
        Assert.Equal(ScalarType.Int8, cb.dtype);
        Assert.True(scb.equal(w.abs().amax([1])).all().item<bool>());
        Assert.Equal(127, cb.abs().to(ScalarType.Int32).amax([1]).min().item<int>());
        var back = Int8Rowwise.Dequantize(cb, scb);
        var bound = scb.unsqueeze(1) / 254 * (1 + 1e-5);
        Assert.True(((back - w).abs() <= bound).all().item<bool>());
    }

    /// <summary>Φ⁻¹ by bisection on Φ, Φ computed by Simpson's rule (errors far below float32's).</summary>
    private static double NormalQuantile(double p)
    {
        static double Cdf(double x)
        {
            const int steps = 4000;
            var h = x / steps;
            double sum = 1 + Math.Exp(-x * x / 2);
            for (int i = 1; i < steps; i++) sum += (i % 2 == 1 ? 4 : 2) * Math.Exp(-Math.Pow(i * h, 2) / 2);
            return 0.5 + sum * h / 3 / Math.Sqrt(2 * Math.PI);
        }
        double lo = -10, hi = 10;
        for (int i = 0; i < 80; i++)
        {
            var mid = (lo + hi) / 2;
            if (Cdf(mid) < p) lo = mid;
            else hi = mid;
        }
        return (lo + hi) / 2;
    }
}
