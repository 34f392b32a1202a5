// Blockwise absmax quantization as bitsandbytes' PyTorch-native kernels do it
// (bitsandbytes/backends/default/ops.py at commit 95f9af3: quantize_4bit, dequantize_4bit,
// quantize_blockwise, dequantize_blockwise): the flattened tensor is cut into blocks, each block
// is scaled by its absmax into [-1, 1] and every value takes the nearest code (ties to the lower one,
// torch.bucketize over the midpoints), the CUDA kernels' decision trees select the same codes.
using TorchSharp;
using static TorchSharp.torch;

namespace Peft.Quantization;

/// <summary>bitsandbytes' blockwise 4-bit and 8-bit (dynamic map) quantization, on any device torch runs on.</summary>
public static class Blockwise
{
    /// <summary>bitsandbytes' default 4-bit block size.</summary>
    public const int DefaultBlockSize = 64;

    /// <summary>The block size of the second quantization of the absmax values (double quantization).</summary>
    public const int NestedBlockSize = 256;

    /// <summary>
    /// quantize_4bit: packs <paramref name="weight"/> (any shape, float) into bytes of two codes, the first value of each
    /// pair in the high nibble (<c>(q[0::2] &lt;&lt; 4) | q[1::2]</c>), shape (⌈n/2⌉, 1) uint8, and returns the float32 absmax of each block.
    /// </summary>
    public static (Tensor Packed, Tensor Absmax) Quantize4Bit(Tensor weight, QuantType type, int blockSize = DefaultBlockSize)
    {
        CheckBlockSize(blockSize);
        using var scope = NewDisposeScope();
        var code = tensor(Codebooks.FourBit(type).ToArray(), device: weight.device);
        var order = code.argsort();
        var sorted = code.index_select(0, order);
        var bounds = (sorted.narrow(0, 0, 15) + sorted.narrow(0, 1, 15)) / 2;
        var (scaled, absmax) = ScaleBlocks(weight, blockSize);
        if (scaled.numel() % 2 == 1) scaled = nn.functional.pad(scaled, [0, 1]);
        var q = torch.bucketize(scaled, bounds, outInt32: false, right: false);
        // bucketize indexes the sorted table; FP4's table is in bit-pattern order.
        if (type != QuantType.Nf4) q = order.index_select(0, q);
        var q8 = q.to(ScalarType.Byte);
        var packed = q8[TensorIndex.Slice(0, null, 2)].bitwise_left_shift(4).bitwise_or(q8[TensorIndex.Slice(1, null, 2)]).unsqueeze(1);
        return (packed.MoveToOuterDisposeScope(), absmax.MoveToOuterDisposeScope());
    }

    /// <summary>
    /// dequantize_4bit: <c>code[nibble] · absmax[block]</c> in float32, cast to <paramref name="dtype"/>, shaped
    /// <paramref name="shape"/>. <paramref name="absmax"/> is float32, one per block (already undone when nested);
    /// <paramref name="code"/> the 16 float32 values (a checkpoint's <c>quant_map</c>).
    /// </summary>
    public static Tensor Dequantize4Bit(Tensor packed, Tensor absmax, Tensor code, long[] shape, ScalarType dtype, int blockSize = DefaultBlockSize)
    {
        using var scope = NewDisposeScope();
        var n = shape.Aggregate(1L, (a, b) => a * b);
        // One lookup per byte: a 256 × 2 table of (high nibble's value, low nibble's value).
        code = code.to(ScalarType.Float32);
        var bytes = arange(256, dtype: ScalarType.Int64, device: packed.device);
        var pairs = stack([code.index_select(0, bytes.bitwise_right_shift(4)), code.index_select(0, bytes.bitwise_and(0xF))], 1);
        var values = pairs.index_select(0, packed.reshape(-1).to(ScalarType.Int64)).reshape(-1).narrow(0, 0, n);
        var result = ScaleBack(values, absmax, blockSize).reshape(shape).to(dtype);
        return result.MoveToOuterDisposeScope();
    }

    /// <summary>
    /// quantize_blockwise: the nearest of <paramref name="code"/>'s 256 sorted values for each absmax-scaled value,
    /// uint8 in <paramref name="values"/>' shape, with the float32 absmax of each block.
    /// </summary>
    public static (Tensor Quantized, Tensor Absmax) QuantizeBlockwise(Tensor values, Tensor code, int blockSize = NestedBlockSize)
    {
        using var scope = NewDisposeScope();
        var (scaled, absmax) = ScaleBlocks(values, blockSize);
        var bounds = (code.narrow(0, 0, code.numel() - 1) + code.narrow(0, 1, code.numel() - 1)) / 2;
        var q = torch.bucketize(scaled, bounds, outInt32: false, right: false).to(ScalarType.Byte).reshape(values.shape);
        return (q.MoveToOuterDisposeScope(), absmax.MoveToOuterDisposeScope());
    }

    /// <summary>dequantize_blockwise: <c>code[q] · absmax[block]</c> in float32.</summary>
    public static Tensor DequantizeBlockwise(Tensor quantized, Tensor absmax, Tensor code, int blockSize = NestedBlockSize)
    {
        using var scope = NewDisposeScope();
        var values = code.index_select(0, quantized.reshape(-1).to(ScalarType.Int64));
        return ScaleBack(values, absmax, blockSize).reshape(quantized.shape).MoveToOuterDisposeScope();
    }

    /// <summary>bitsandbytes accepts these block sizes for 4-bit quantization.</summary>
    /// <exception cref="ArgumentException">Any other.</exception>
    public static void CheckBlockSize(int blockSize)
    {
        if (blockSize is not (32 or 64 or 128 or 256 or 512 or 1024 or 2048 or 4096))
        {
            throw new ArgumentException($"block size {blockSize} is not one of 32, 64, 128, 256, 512, 1024, 2048, 4096 (bitsandbytes' sizes).", nameof(blockSize));
        }
    }

    /// <summary>Flattens to float32 and scales each block by 1/absmax (clamped to [-1, 1]); a short last block is its own block.</summary>
    private static (Tensor Scaled, Tensor Absmax) ScaleBlocks(Tensor input, int blockSize)
    {
        var flat = input.reshape(-1).to(ScalarType.Float32);
        var n = flat.numel();
        var rem = n % blockSize;
        var full = n - rem;
        var blocks = flat.narrow(0, 0, full).reshape(full / blockSize, blockSize);
        var absmax = blocks.abs().amax([-1]);
        // As the reference: multiply by the reciprocal for whole blocks, divide for the remainder.
        var scaled = (blocks * (1.0 / absmax.clamp_min(1e-38)).view(-1, 1)).clamp(-1, 1).reshape(-1);
        if (rem > 0)
        {
            var tail = flat.narrow(0, full, rem);
            var am = tail.abs().max().clamp_min(1e-38);
            absmax = cat([absmax, am.unsqueeze(0)], 0);
            scaled = cat([scaled, (tail / am).clamp(-1, 1)], 0);
        }
        return (scaled, absmax);
    }

    private static Tensor ScaleBack(Tensor values, Tensor absmax, int blockSize)
    {
        var n = values.numel();
        var rem = n % blockSize;
        if (rem == 0) return (values.view(-1, blockSize) * absmax.view(-1, 1)).reshape(n);
        var full = n - rem;
        var blocks = full / blockSize;
        var head = (values.narrow(0, 0, full).view(-1, blockSize) * absmax.narrow(0, 0, blocks).view(-1, 1)).reshape(full);
        return cat([head, values.narrow(0, full, rem) * absmax[blocks]], 0);
    }
}
