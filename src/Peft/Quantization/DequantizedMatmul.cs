using TorchSharp;
using static TorchSharp.torch;
using static TorchSharp.torch.autograd;

namespace Peft.Quantization;

/// <summary>
/// <c>x · Wᵀ</c> with W dequantized in forward and again in backward, so the graph keeps only the quantized
/// layer, never a dequantized copy of its weight (bitsandbytes' MatMul4Bit does the same). The gradient goes to
/// x alone: the quantized weight gets none.
/// </summary>
internal sealed class DequantizedMatmul : SingleTensorFunction<DequantizedMatmul>
{
    private const string LayerKey = "layer";

    /// <inheritdoc />
    public override string Name => nameof(DequantizedMatmul);

    /// <summary>Applies the function to <paramref name="input"/> (in the layer's compute dtype).</summary>
    public static Tensor Apply(Tensor input, IQuantizedLinear layer) => apply(input, layer);

    /// <inheritdoc />
    public override Tensor forward(AutogradContext ctx, params object[] vars)
    {
        var input = (Tensor)vars[0];
        var layer = (IQuantizedLinear)vars[1];
        ctx.save_data(LayerKey, layer);
        using var weight = layer.Dequantize();
        return nn.functional.linear(input, weight);
    }

    /// <inheritdoc />
    public override List<Tensor> backward(AutogradContext ctx, Tensor gradOutput)
    {
        var layer = (IQuantizedLinear)ctx.get_data(LayerKey);
        using var weight = layer.Dequantize();
        return [gradOutput.matmul(weight), null!];
    }
}
