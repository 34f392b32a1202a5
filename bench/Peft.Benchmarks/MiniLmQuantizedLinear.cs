// Issue 16: what a quantized frozen base costs at MiniLM's small layers (384 → 384, 384 → 1536, 1536 → 384) in the
// text default job (batch 32 × 32 tokens): forward + backward to the input (what LoRA needs of the frozen base) of a
// float32 Linear, an NF4 and an int8 layer, and each layer's dequantization alone, interleaved in one run.
using Peft.Quantization;
using TorchSharp;
using static TorchSharp.torch;

internal static class MiniLmQuantizedLinear
{
    private const int Tokens = 32 * 32;

    public static Dictionary<string, object> Run()
    {
        torch.manual_seed(0);
        var result = new Dictionary<string, object>();
        foreach (var (inFeatures, outFeatures) in new[] { (384, 384), (384, 1536), (1536, 384) })
        {
            var dense = nn.Linear(inFeatures, outFeatures);
            foreach (var p in dense.parameters()) p.requires_grad = false;
            var nf4 = Linear4bit.FromLinear(nn.Linear(inFeatures, outFeatures), QuantType.Nf4, doubleQuant: false, ScalarType.Float32);
            var int8 = Linear8bit.FromLinear(nn.Linear(inFeatures, outFeatures), ScalarType.Float32);
            var x = torch.randn(Tokens, inFeatures).requires_grad_();
            var g = torch.randn(Tokens, outFeatures);
            void Step(nn.Module<Tensor, Tensor> layer)
            {
                layer.call(x).backward([g]);
                x.grad!.zero_();
            }
            using var grad = torch.enable_grad();
            var times = Measure.Interleaved(2, 9,
                ("float32", () => Step(dense)),
                ("nf4", () => Step(nf4)),
                ("int8", () => Step(int8)),
                ("nf4_dequantize", () => nf4.Dequantize()),
                ("int8_dequantize", () => int8.Dequantize()));
            var shape = $"{inFeatures}x{outFeatures}";
            foreach (var name in new[] { "float32", "nf4", "int8" }) result[$"{shape}_{name}_fwd_bwd_ms"] = times[name];
            result[$"{shape}_nf4_dequantize_ms"] = times["nf4_dequantize"];
            result[$"{shape}_int8_dequantize_ms"] = times["int8_dequantize"];
            result[$"{shape}_nf4_over_float32"] = times["nf4"] / times["float32"];
            result[$"{shape}_nf4_over_float32_cpu"] = times.Cpu["nf4"] / times.Cpu["float32"];
            result[$"{shape}_int8_over_float32"] = times["int8"] / times["float32"];
            result[$"{shape}_int8_over_float32_cpu"] = times.Cpu["int8"] / times.Cpu["float32"];
            // Two dequantizations per step (forward and backward): their share of the NF4 step.
            result[$"{shape}_nf4_dequantize_twice_over_nf4"] = 2 * times["nf4_dequantize"] / times["nf4"];
        }
        return result;
    }
}
