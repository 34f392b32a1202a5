// Issue 20, measure 2: forward of the base model, with an unmerged LoRA (fused update on and off), merged with the
// wrappers left in place (Merge), and merged and unloaded (MergeAndUnload), interleaved in one run; GPT-2 also
// decodes. Four copies of the same random model, so that every variant is measured in every round.
using Peft;
using Peft.Methods.Lora;
using Peft.Modeling;
using TorchSharp;
using static TorchSharp.torch;

internal static class InferenceRatios
{
    public static Dictionary<string, object> Run(string shape)
    {
        var baseModel = Shapes.Build(shape);
        PeftModel Adapted()
        {
            var peft = PeftModels.Default.GetPeftModel(Shapes.Build(shape), Shapes.LoraFor(shape) with { TaskType = baseModel.Task, InitLoraWeights = LoraInitWeights.Random });
            peft.eval();
            return peft;
        }
        var unmerged = Adapted();
        var merged = Adapted();
        merged.Merge();
        var unloaded = Adapted().MergeAndUnload();
        foreach (var m in new nn.Module[] { baseModel, unloaded }) m.eval();
        var inputs = Shapes.Inputs(baseModel, shape, labels: false);
        var threads = torch.get_num_threads();

        Action Forward(nn.Module<ModelInputs, ModelOutputs> model, int? threadCount = null) => () =>
        {
            using var noGrad = torch.no_grad();
            if (threadCount is { } t) torch.set_num_threads(t);
            try { model.call(inputs); }
            finally { torch.set_num_threads(threads); }
        };
        var variants = new List<(string Name, Action Run)>
        {
            ("base", Forward(baseModel)),
            ("unmerged", Forward(unmerged)),
            ("unmerged_unfused", () => Measure.Unfused(Forward(unmerged))),
            ("merged", Forward(merged)),
            ("unloaded", Forward(unloaded)),
        };
        if (threads > 1)
        {
            variants.Add(("base_1_thread", Forward(baseModel, 1)));
            variants.Add(("unmerged_1_thread", Forward(unmerged, 1)));
        }
        const int decoded = 16;
        if (shape == "gpt2")
        {
            var prompt = inputs.InputIds![.., ..16];
            Action Decode(nn.Module<ModelInputs, ModelOutputs> model) => () => { using var noGrad = torch.no_grad(); Generation.Greedy(model, baseModel.Config, prompt, null, decoded); };
            variants.Add(("decode_base", Decode(baseModel)));
            variants.Add(("decode_unmerged", Decode(unmerged)));
            variants.Add(("decode_merged", Decode(merged)));
            variants.Add(("decode_unloaded", Decode(unloaded)));
        }
        var ms = Measure.Interleaved(1, shape == "gpt2" ? 5 : 9, [.. variants]);
        var result = new Dictionary<string, object>
        {
            ["base_ms"] = ms["base"],
            ["unmerged_over_base"] = ms["unmerged"] / ms["base"],
            ["unmerged_unfused_over_base"] = ms["unmerged_unfused"] / ms["base"],
            ["unmerged_unfused_over_base_cpu"] = ms.Cpu["unmerged_unfused"] / ms.Cpu["base"],
            ["unmerged_over_base_min"] = ms.Min["unmerged"] / ms.Min["base"],
            ["unmerged_over_base_cpu"] = ms.Cpu["unmerged"] / ms.Cpu["base"],
            ["merged_over_base"] = ms["merged"] / ms["base"],
            ["unloaded_over_base"] = ms["unloaded"] / ms["base"],
            ["merged_over_base_min"] = ms.Min["merged"] / ms.Min["base"],
            ["merged_over_base_cpu"] = ms.Cpu["merged"] / ms.Cpu["base"],
            ["unloaded_over_base_cpu"] = ms.Cpu["unloaded"] / ms.Cpu["base"],
            ["managed_bytes_unmerged_forward"] = Measure.AllocatedBytes(Forward(unmerged)),
            ["managed_bytes_base_forward"] = Measure.AllocatedBytes(Forward(baseModel)),
        };
        // Tensors created per forward, a lower bound on native calls, and the native calls themselves under the
        // counting library (NativeCalls.cs).
        NativeCalls.AddCounts(result, "forward", [("unmerged", "base"), ("unmerged_unfused", "base"), ("merged", "base"), ("unloaded", "base")],
            [.. variants.Where(v => v.Name is "base" or "unmerged" or "unmerged_unfused" or "merged" or "unloaded")]);
        if (threads > 1)
        {
            result["base_1_thread_over_base"] = ms["base_1_thread"] / ms["base"];
            result["unmerged_1_thread_over_unmerged"] = ms["unmerged_1_thread"] / ms["unmerged"];
        }
        if (shape == "gpt2")
        {
            result["decode_base_ms_per_token"] = ms["decode_base"] / decoded;
            result["decode_unmerged_over_base"] = ms["decode_unmerged"] / ms["decode_base"];
            result["decode_merged_over_base"] = ms["decode_merged"] / ms["decode_base"];
            result["decode_unloaded_over_base"] = ms["decode_unloaded"] / ms["decode_base"];
        }
        return result;
    }
}
