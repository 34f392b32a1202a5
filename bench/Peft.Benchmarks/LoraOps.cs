// Issue 20: the per-op profile of one unmerged LoRA Linear forward (no gradients), at the shapes where the unmerged
// model costs more than the merged one: TinyLlama's projections over a bf16 base with a float32 adapter (256 tokens;
// run with ONEDNN_MAX_CPU_ISA=ALL, bf16 products are oneDNN's) and MiniLM's over float32 (32 × 48 tokens, r = 8).
// Each op of the layer's forward is timed alone beside the layer itself and the frozen Linear alone.
using Peft.Methods.Lora;
using TorchSharp;
using static TorchSharp.torch;

internal static class LoraOps
{
    /// <summary>TinyLlama's q (and o), k (and v), gate (and up) and down projections, 256 tokens, r = 16, bf16 base.</summary>
    public static Dictionary<string, object> TinyLlama() => Profile(ScalarType.BFloat16, [1, 256], 16,
        [("q", 2048, 2048), ("k", 2048, 256), ("gate", 2048, 5632), ("down", 5632, 2048)]);

    /// <summary>MiniLM's attention projections and dense layers, 32 × 48 tokens, r = 8, float32.</summary>
    public static Dictionary<string, object> MiniLm() => Profile(ScalarType.Float32, [32, 48], 8,
        [("query", 384, 384), ("intermediate", 384, 1536), ("output", 1536, 384)]);

    private static Dictionary<string, object> Profile(ScalarType baseType, long[] tokens, int rank, (string Name, int In, int Out)[] shapes)
    {
        var result = new Dictionary<string, object>();
        foreach (var (name, inFeatures, outFeatures) in shapes)
        {
            foreach (var (key, value) in Layer(baseType, tokens, rank, inFeatures, outFeatures)) result[$"{name}_{key}"] = value;
        }
        return result;
    }

    private static Dictionary<string, object> Layer(ScalarType baseType, long[] tokens, int rank, int inFeatures, int outFeatures)
    {
        torch.manual_seed(0);
        var linear = nn.Linear(inFeatures, outFeatures, hasBias: false, dtype: baseType);
        foreach (var p in linear.parameters()) p.requires_grad = false;
        var layer = new LoraLayer(linear, fanInFanOut: false);
        layer.AddAdapter("default", rank, scaling: 2.0, dropout: 0, loraBias: false, LoraInit.Gaussian);
        layer.ActiveAdapters = ["default"];
        layer.eval();
        var baseOnly = new LoraLayer(linear, fanInFanOut: false);
        var a = layer.parameters().First(p => p.shape[0] == rank);
        var b = layer.parameters().First(p => p.shape[1] == rank);
        using var noGrad = torch.no_grad();
        nn.init.normal_(b, std: 0.02);
        var adapterType = a.dtype;
        // The input as the model hands it on, (batch, length, features); the ops below see it flattened.
        var x = torch.randn([.. tokens, inFeatures]).to(baseType);
        var w = linear.weight!;
        var xf = x.to(adapterType).view(-1, inFeatures);
        var h = torch.mm(xf, a.T);
        var y = nn.functional.linear(x, w).view(-1, outFeatures);
        var update = torch.mm(h, b.T);
        var yf = y.to(adapterType);
        var h3 = nn.functional.linear(x.to(adapterType), a);
        var at = a.T.contiguous();
        var bt = b.T.contiguous();
        var ms = Measure.Interleaved(2, 15,
            ("layer", () => layer.call(x)),
            ("layer_unfused", () => Measure.Unfused(() => layer.call(x))),
            ("frozen", () => baseOnly.call(x)),
            ("fused_inline", () =>
            {
                var r = nn.functional.linear(x, w);
                var t = nn.functional.linear(x.to(adapterType).reshape(-1, inFeatures), a);
                var sum = r.to(adapterType);
                sum.view(-1, outFeatures).addmm_(t, b.T, beta: 1, alpha: 2);
                sum.to(baseType);
            }),
            ("fused_inline_thin_first", () =>
            {
                var t = nn.functional.linear(x.to(adapterType).reshape(-1, inFeatures), a);
                var r = nn.functional.linear(x, w);
                var sum = r.to(adapterType);
                sum.view(-1, outFeatures).addmm_(t, b.T, beta: 1, alpha: 2);
                sum.to(baseType);
            }),
            ("base_gemm", () => nn.functional.linear(x, w)),
            ("cast_in", () => x.to(adapterType)),
            ("x_At", () => torch.mm(xf, a.T)),
            ("x_At_contiguous", () => torch.mm(xf, at)),
            ("A_xt", () => torch.mm(a, xf.T)),
            ("linear_A_3d", () => nn.functional.linear(x.to(adapterType), a)),
            ("linear_B_3d", () => nn.functional.linear(h3, b)),
            ("h_Bt", () => torch.mm(h, b.T)),
            ("h_Bt_contiguous", () => torch.mm(h, bt)),
            ("y_addmm_Bt_contiguous", () => yf.addmm_(h, bt, beta: 1, alpha: 2)),
            ("y_addmm_into_cast", () => y.to(adapterType).addmm_(h, b.T, beta: 1, alpha: 2).to(baseType)),
            ("y_addmm_", () => yf.addmm_(h, b.T, beta: 1, alpha: 2)),
            ("add_mixed", () => y.add(update, alpha: 2)),
            ("add_same", () => yf.add(update, alpha: 2)),
            ("cast_update", () => update.to(baseType)),
            ("cast_out", () => yf.to(baseType)));
        var result = new Dictionary<string, object>
        {
            ["layer_over_frozen"] = ms["layer"] / ms["frozen"],
            ["layer_unfused_over_frozen"] = ms["layer_unfused"] / ms["frozen"],
            ["layer_over_frozen_cpu"] = ms.Cpu["layer"] / ms.Cpu["frozen"],
            ["layer_unfused_over_frozen_cpu"] = ms.Cpu["layer_unfused"] / ms.Cpu["frozen"],
            ["op_ms"] = ms.Median.ToDictionary(kv => kv.Key, kv => Math.Round(kv.Value, 3)),
            ["managed_bytes_per_forward"] = Measure.AllocatedBytes(() => layer.call(x)),
        };
        return result;
    }
}
