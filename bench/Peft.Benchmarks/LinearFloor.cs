// Issue 20, measure 1: one LoRA Linear (4096 → 4096, r = 16, 2048 tokens) forward + backward against the plain matrix
// products it needs, each product also timed alone (the per-op profile of the layer).
using Peft.Methods.Lora;
using TorchSharp;
using static TorchSharp.torch;

internal static class LinearFloor
{
    private const int Tokens = 2048, Features = 4096, Rank = 16;

    public static Dictionary<string, object> Run()
    {
        var (layer, linear) = MicroBenchmarks.Layers(Features, Features, Rank);
        layer.train();
        var (w, bias) = (linear.weight!, linear.bias!);
        var a = layer.parameters().First(p => p.requires_grad && p.shape[0] == Rank);
        var b = layer.parameters().First(p => p.requires_grad && p.shape[1] == Rank);

        var x = torch.randn(Tokens, Features).requires_grad_();
        var g = torch.randn(Tokens, Features);
        void Step(nn.Module<Tensor, Tensor> module)
        {
            var y = module.call(x);
            y.backward([g]);
            x.grad!.zero_();
            a.grad?.zero_();
            b.grad?.zero_();
        }
        // The products a LoRA Linear's forward + backward needs, nothing else: the floor.
        Tensor BaseForward() => torch.addmm(bias, x, w.T, beta: 1, alpha: 1);
        Tensor InputGrad() => torch.mm(g, w);
        void Thin()
        {
            var h = torch.mm(x, a.T);                                  // (N, r)
            var y = BaseForward();
            y.addmm_(h, b.T, alpha: 2);                               // the update, into the output
            var gh = torch.mm(g, b);                                  // (N, r)
            torch.mm(g.T, h);                                         // grad B
            torch.mm(gh.T, x);                                        // grad A
            InputGrad().addmm_(gh, a, alpha: 2);                      // grad x
        }
        var h0 = torch.mm(x, a.T).detach();
        var gh0 = torch.mm(g, b).detach();
        var y0 = torch.zeros(Tokens, Features);
        var baseOnly = new LoraLayer(linear, fanInFanOut: false);    // no adapter: the frozen Linear alone
        using var grad = torch.enable_grad();
        var fused = Measure.Interleaved(1, 7,
            ("floor", () => { using var _ = torch.no_grad(); Thin(); }),
            ("lora", () => Step(layer)),
            ("lora_unfused", () => Measure.Unfused(() => Step(layer))),
            ("base_linear", () => Step(baseOnly)),
            ("lora_forward", () => layer.call(x)),
            ("base_forward", () => baseOnly.call(x)),
            ("x_At", () => { using var _ = torch.no_grad(); torch.mm(x, a.T); }),
            ("y_add_h_Bt", () => { using var _ = torch.no_grad(); y0.addmm_(h0, b.T, alpha: 2); }),
            ("g_B", () => { using var _ = torch.no_grad(); torch.mm(g, b); }),
            ("gt_h", () => { using var _ = torch.no_grad(); torch.mm(g.T, h0); }),
            ("ght_x", () => { using var _ = torch.no_grad(); torch.mm(gh0.T, x); }),
            ("gx_add_gh_A", () => { using var _ = torch.no_grad(); y0.addmm_(gh0, a, alpha: 2); }),
            ("gemm_forward", () => { using var _ = torch.no_grad(); BaseForward(); }),
            ("gemm_input_grad", () => { using var _ = torch.no_grad(); InputGrad(); }));
        var allocated = Measure.AllocatedBytes(() => Step(layer));
        var result = new Dictionary<string, object>
        {
            ["lora_fwd_bwd_ms"] = fused["lora"],
            ["floor_ms"] = fused["floor"],
            ["lora_over_floor"] = fused["lora"] / fused["floor"],
            ["lora_over_floor_cpu"] = fused.Cpu["lora"] / fused.Cpu["floor"],
            ["lora_over_floor_min"] = fused.Min["lora"] / fused.Min["floor"],
            ["lora_unfused_over_floor"] = fused["lora_unfused"] / fused["floor"],
            ["lora_unfused_over_floor_cpu"] = fused.Cpu["lora_unfused"] / fused.Cpu["floor"],
            ["base_linear_over_floor"] = fused["base_linear"] / fused["floor"],
            ["base_linear_fwd_bwd_ms"] = fused["base_linear"],
            ["lora_forward_ms"] = fused["lora_forward"],
            ["base_forward_ms"] = fused["base_forward"],
            ["gemm_forward_ms"] = fused["gemm_forward"],
            ["gemm_input_grad_ms"] = fused["gemm_input_grad"],
            ["thin_and_adds_ms"] = fused["floor"] - fused["gemm_forward"] - fused["gemm_input_grad"],
            ["op_ms"] = new[] { "x_At", "y_add_h_Bt", "g_B", "gt_h", "ght_x", "gx_add_gh_A" }.ToDictionary(k => k, k => fused[k]),
            ["managed_bytes_per_step"] = allocated,
        };
        // Per step (forward + backward) and per forward: tensors created, a lower bound on native calls, and the native
        // calls themselves under the counting library (NativeCalls.cs).
        NativeCalls.AddCounts(result, "call", [("lora", "base_linear"), ("lora", "floor"), ("lora_unfused", "base_linear"), ("lora_forward", "base_forward")],
            ("lora", () => Step(layer)),
            ("lora_unfused", () => Measure.Unfused(() => Step(layer))),
            ("base_linear", () => Step(baseOnly)),
            ("floor", () => { using var _ = torch.no_grad(); Thin(); }),
            ("lora_forward", () => layer.call(x)),
            ("base_forward", () => baseOnly.call(x)));
        return result;
    }
}
