// Issue 20, measure 3: a LoRA training step against a full fine-tuning step, time and peak memory, each in a fresh
// child process (peak RSS is then that configuration's alone). A step is forward + loss + backward + AdamW step.
using System.Diagnostics;
using System.Text.Json;
using Peft;
using Peft.Modeling;
using TorchSharp;
using static TorchSharp.torch;

internal static class TrainSteps
{
    /// <summary>Runs the LoRA and the full step of <paramref name="shape"/> in children, twice each, alternating.</summary>
    public static Dictionary<string, object> Run(string shape)
    {
        var runs = new[] { "lora", "full", "lora", "full" }.Select(kind => (kind, Measure.Child("train", shape, kind))).ToList();
        double Median(string kind, string key) => Measure.Median(runs.Where(r => r.kind == kind).Select(r => r.Item2[key]).ToList());
        var result = new Dictionary<string, object>
        {
            ["lora_step_ms"] = Median("lora", "step_ms"),
            ["full_step_ms"] = Median("full", "step_ms"),
            ["lora_over_full_time"] = Median("lora", "step_ms") / Median("full", "step_ms"),
            ["lora_over_full_cpu"] = Median("lora", "step_cpu_ms") / Median("full", "step_cpu_ms"),
            ["lora_peak_rss_bytes"] = Median("lora", "peak_rss_bytes"),
            ["full_peak_rss_bytes"] = Median("full", "peak_rss_bytes"),
            ["lora_over_full_peak_rss"] = Median("lora", "peak_rss_bytes") / Median("full", "peak_rss_bytes"),
            ["lora_step_rss_growth_bytes"] = Median("lora", "step_growth_bytes"),
            ["full_step_rss_growth_bytes"] = Median("full", "step_growth_bytes"),
            ["lora_over_full_step_growth"] = Median("lora", "step_growth_bytes") / Median("full", "step_growth_bytes"),
            ["trainable"] = Median("lora", "trainable"),
            ["all"] = Median("lora", "all"),
        };
        AddMemorySplit(result, Median);
        return result;
    }

    /// <summary>
    /// Issue 10: the LoRA step of <paramref name="shape"/> with the explicit attention and with scaled_dot_product_attention
    /// (children, alternating), and the forward (prefill) interleaved in this process.
    /// </summary>
    public static Dictionary<string, object> Attention(string shape)
    {
        var runs = new[] { "Eager", "Sdpa", "Eager", "Sdpa" }.Select(a => (a, Measure.Child("train", shape, "lora", a))).ToList();
        double Median(string a, string key) => Measure.Median(runs.Where(r => r.a == a).Select(r => r.Item2[key]).ToList());
        var eager = Shapes.Build(shape, AttentionImplementation.Eager);
        var fused = Shapes.Build(shape, AttentionImplementation.Sdpa);
        var inputs = Shapes.Inputs(eager, shape, labels: false);
        var ms = Measure.Interleaved(1, 5,
            ("eager", () => { using var _ = torch.no_grad(); eager.call(inputs); }),
            ("sdpa", () => { using var _ = torch.no_grad(); fused.call(inputs); }));
        return new()
        {
            ["eager_forward_ms"] = ms["eager"],
            ["sdpa_over_eager_forward"] = ms["sdpa"] / ms["eager"],
            ["sdpa_over_eager_forward_cpu"] = ms.Cpu["sdpa"] / ms.Cpu["eager"],
            ["eager_lora_step_ms"] = Median("Eager", "step_ms"),
            ["sdpa_over_eager_step_time"] = Median("Sdpa", "step_ms") / Median("Eager", "step_ms"),
            ["sdpa_over_eager_step_cpu"] = Median("Sdpa", "step_cpu_ms") / Median("Eager", "step_cpu_ms"),
            ["eager_step_rss_growth_bytes"] = Median("Eager", "step_growth_bytes"),
            ["sdpa_over_eager_step_rss_growth"] = Median("Sdpa", "step_growth_bytes") / Median("Eager", "step_growth_bytes"),
            ["sdpa_over_eager_peak_rss"] = Median("Sdpa", "peak_rss_bytes") / Median("Eager", "peak_rss_bytes"),
        };
    }

    /// <summary>Issue 10: the LoRA step of <paramref name="shape"/> with and without gradient checkpointing (children, alternating).</summary>
    public static Dictionary<string, object> Checkpointing(string shape)
    {
        var runs = new[] { "plain", "checkpointed", "plain", "checkpointed" }
            .Select(c => (c, Measure.Child(["train", shape, "lora", "Auto", .. c == "checkpointed" ? new[] { "checkpointing" } : []]))).ToList();
        double Median(string c, string key) => Measure.Median(runs.Where(r => r.c == c).Select(r => r.Item2[key]).ToList());
        return new()
        {
            ["plain_step_ms"] = Median("plain", "step_ms"),
            ["checkpointed_over_plain_step_time"] = Median("checkpointed", "step_ms") / Median("plain", "step_ms"),
            ["checkpointed_over_plain_step_cpu"] = Median("checkpointed", "step_cpu_ms") / Median("plain", "step_cpu_ms"),
            ["plain_step_rss_growth_bytes"] = Median("plain", "step_growth_bytes"),
            ["checkpointed_step_rss_growth_bytes"] = Median("checkpointed", "step_growth_bytes"),
            ["checkpointed_over_plain_step_rss_growth"] = Median("checkpointed", "step_growth_bytes") / Median("plain", "step_growth_bytes"),
            ["checkpointed_over_plain_peak_rss"] = Median("checkpointed", "peak_rss_bytes") / Median("plain", "peak_rss_bytes"),
        };
    }

    /// <summary>The memory marks of a step (see <see cref="Child"/>): built model, then after each phase of the steady step.</summary>
    private static readonly string[] Marks = ["built", "before", "forward", "backward", "optimizer_step", "end"];

    /// <summary>
    /// Issue 20: where a step's memory goes, per kind (median of its two children): RSS, native heap bytes in use and
    /// native heap bytes held free at each mark, the native peak inside the step, the computed sizes of what training
    /// adds (trainable weights, their gradients, AdamW's two moments), and the tensors a step creates (a lower bound
    /// on native calls), with the ratios of LoRA to full.
    /// </summary>
    private static void AddMemorySplit(Dictionary<string, object> result, Func<string, string, double> median)
    {
        string[] keys = [.. Marks.SelectMany(m => new[] { $"rss_{m}", $"native_{m}", $"native_free_{m}" }),
            "native_step_peak", "first_step_native_optimizer_growth",
            "trainable_weights", "gradients", "adamw_moments", "frozen_weights"];
        foreach (var kind in new[] { "lora", "full" })
        {
            var split = keys.ToDictionary(key => key, key => median(kind, key + "_bytes"));
            // What the forward keeps for backward (activations, the loss and logits), on the steady step.
            split["activations_native"] = split["native_forward"] - split["native_before"];
            split["step_native_peak_growth"] = split["native_step_peak"] - split["native_before"];
            result[$"{kind}_memory_split_bytes"] = split;
            result[$"{kind}_tensors_created_per_step"] = median(kind, "tensors_created_per_step");
        }
        double Ratio(string key) => ((Dictionary<string, double>)result["lora_memory_split_bytes"])[key] / ((Dictionary<string, double>)result["full_memory_split_bytes"])[key];
        result["lora_over_full_tensors_per_step"] = (double)result["lora_tensors_created_per_step"] / (double)result["full_tensors_created_per_step"];
        if (NativeCalls.Counting)
        {
            // The children run under the same LD_AUDIT library as this process, so they counted too.
            result["lora_native_calls_per_step"] = median("lora", "native_calls_per_step");
            result["full_native_calls_per_step"] = median("full", "native_calls_per_step");
            result["lora_over_full_native_calls_per_step"] = (double)result["lora_native_calls_per_step"] / (double)result["full_native_calls_per_step"];
        }
        result["lora_over_full_activations_native"] = Ratio("activations_native");
        result["lora_over_full_step_native_peak_growth"] = Ratio("step_native_peak_growth");
        result["lora_over_full_native_step_peak"] = Ratio("native_step_peak");
    }

    /// <summary>
    /// The child: builds the model, runs 2 + 5 steps, prints the median step time and the memory figures. The two
    /// warm-up steps are the measured ones: the first for what AdamW allocates on its first step, the second (steady:
    /// the moments exist) for the memory at each phase, the native peak and the tensors created; the timed steps carry
    /// no instrumentation.
    /// </summary>
    public static int Child(string shape, string kind, string attention = "Auto", bool checkpointing = false)
    {
        torch.set_num_threads(int.Parse(Environment.GetEnvironmentVariable("PEFT_BENCH_THREADS") ?? Environment.ProcessorCount.ToString()));
        var model = Shapes.Build(shape, Enum.Parse<AttentionImplementation>(attention));
        nn.Module<ModelInputs, ModelOutputs> trained = kind == "full" ? model : PeftModels.Default.GetPeftModel(model, Shapes.LoraFor(shape) with { TaskType = model.Task });
        if (checkpointing) model.GradientCheckpointingEnable();
        trained.train();
        var parameters = trained.parameters().Where(p => p.requires_grad).ToList();
        using var optimizer = torch.optim.AdamW(parameters, lr: 1e-4);
        var inputs = Shapes.Inputs(model, shape, labels: true, batchOverride: shape is "gpt2" or "bloom" ? 2 : null);
        var figures = new Dictionary<string, double>();
        void Mark(string point)
        {
            figures[$"rss_{point}_bytes"] = Measure.Memory("VmRSS");
            figures[$"native_{point}_bytes"] = Measure.NativeHeapBytes();
            figures[$"native_free_{point}_bytes"] = Measure.NativeHeapFreeBytes();
        }
        void Step(Action<string> mark)
        {
            using (var scope = torch.NewDisposeScope())
            {
                var loss = trained.call(inputs).Loss!;
                mark("forward");
                loss.backward();
                mark("backward");
                optimizer.step();
                mark("optimizer_step");
                optimizer.zero_grad();
            }
            mark("end");
        }
        Mark("built");                                                // model, optimizer and inputs
        var rssBefore = figures["rss_built_bytes"];

        // Step 1: what the first optimizer step allocates (TorchSharp's AdamW makes its moments when it is built, so
        // "built" holds them already and this is about zero; PyTorch's makes them here).
        var firstStep = new Dictionary<string, double>();
        Step(point => firstStep[point] = Measure.NativeHeapBytes());
        figures["first_step_native_optimizer_growth_bytes"] = firstStep["optimizer_step"] - firstStep["backward"];

        // Step 2, steady: the split by phase, the native peak inside the step, the tensors it creates.
        Mark("before");
        if (NativeCalls.Counting) NativeCalls.FinalizePending();
        var tensorsBefore = Measure.TensorsCreatedSoFar();
        var callsBefore = NativeCalls.Total();
        figures["native_step_peak_bytes"] = Measure.NativeHeapPeak(() => Step(Mark));
        figures["tensors_created_per_step"] = Measure.TensorsCreatedSoFar() - tensorsBefore;
        if (NativeCalls.Counting) NativeCalls.FinalizePending();
        if (NativeCalls.Counting) figures["native_calls_per_step"] = NativeCalls.Total() - callsBefore;

        var times = new List<double>();
        var cpu = new List<double>();
        var process = Process.GetCurrentProcess();
        for (int i = 0; i < 5; i++)
        {
            process.Refresh();
            var cpuBefore = process.TotalProcessorTime;
            var clock = Stopwatch.StartNew();
            Step(_ => { });
            process.Refresh();
            times.Add(clock.Elapsed.TotalMilliseconds);
            cpu.Add((process.TotalProcessorTime - cpuBefore).TotalMilliseconds);
        }
        var peak = Measure.Memory();
        static double Bytes(IEnumerable<Tensor> tensors) => tensors.Sum(t => (double)t.numel() * t.ElementSize);
        var trainableBytes = Bytes(parameters);
        figures["trainable_weights_bytes"] = trainableBytes;
        figures["gradients_bytes"] = trainableBytes;                  // one gradient per trainable weight, same dtype
        figures["adamw_moments_bytes"] = 2 * trainableBytes;          // exp_avg and exp_avg_sq (no amsgrad)
        figures["frozen_weights_bytes"] = Bytes(trained.parameters()) - trainableBytes;
        figures["step_ms"] = Measure.Median(times);
        figures["step_cpu_ms"] = Measure.Median(cpu);
        figures["peak_rss_bytes"] = peak;
        // Gradients, optimizer state and activations: what the steps added on top of the built model.
        figures["step_growth_bytes"] = peak - rssBefore;
        figures["trainable"] = parameters.Sum(p => p.numel());
        figures["all"] = trained.parameters().Sum(p => p.numel());
        Console.WriteLine(JsonSerializer.Serialize(figures));
        return 0;
    }
}
