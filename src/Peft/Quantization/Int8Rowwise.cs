// LLM.int8 weight storage as bitsandbytes makes it (bitsandbytes/backends/default/ops.py at commit
// 95f9af3: int8_vectorwise_quant, int8_vectorwise_dequant).
using static TorchSharp.torch;

namespace Peft.Quantization;

/// <summary>Row-wise absmax int8: <c>CB = round(W · 127 / SCB)</c> with <c>SCB = max|W|</c> of each row (output feature).</summary>
public static class Int8Rowwise
{
    /// <summary>
    /// int8_vectorwise_quant(threshold=0): the int8 codes (<c>CB</c>, W's shape) and the float32 row absmax (<c>SCB</c>).
    /// A row of zeros (absmax 0, which bitsandbytes would divide by) gets codes 0.
    /// </summary>
    public static (Tensor CB, Tensor SCB) Quantize(Tensor weight)
    {
        using var scope = NewDisposeScope();
        var rowStats = weight.abs().amax([1]).to(ScalarType.Float32);
        // 127.0 / row_stats in torch is reciprocal() * 127 (Tensor.__rtruediv__).
        var scale = rowStats.clamp_min(float.Epsilon).reciprocal() * 127.0;
        var cb = (weight * scale.unsqueeze(-1)).round().to(ScalarType.Int8);
        return (cb.MoveToOuterDisposeScope(), rowStats.MoveToOuterDisposeScope());
    }

    /// <summary>int8_vectorwise_dequant: <c>CB · SCB · 7.874015718698502e-3</c> (1/127) in float32.</summary>
    public static Tensor Dequantize(Tensor cb, Tensor scb)
    {
        using var scope = NewDisposeScope();
        return (cb * scb.view(-1, 1) * 7.874015718698502e-3).MoveToOuterDisposeScope();
    }
}
