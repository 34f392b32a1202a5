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
        return new()
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

    /// <summary>The child: builds the model, runs 2 + 5 steps, prints the median step time and the memory figures.</summary>
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
        var rssBefore = Measure.Memory("VmRSS");
        var times = new List<double>();
        var cpu = new List<double>();
        var process = Process.GetCurrentProcess();
        for (int i = 0; i < 7; i++)
        {
            process.Refresh();
            var cpuBefore = process.TotalProcessorTime;
            var clock = Stopwatch.StartNew();
            using (var scope = torch.NewDisposeScope())
            {
                trained.call(inputs).Loss!.backward();
                optimizer.step();
                optimizer.zero_grad();
            }
            process.Refresh();
            if (i < 2) continue;
            times.Add(clock.Elapsed.TotalMilliseconds);
            cpu.Add((process.TotalProcessorTime - cpuBefore).TotalMilliseconds);
        }
        var peak = Measure.Memory();
        Console.WriteLine(JsonSerializer.Serialize(new Dictionary<string, double>
        {
            ["step_ms"] = Measure.Median(times),
            ["step_cpu_ms"] = Measure.Median(cpu),
            ["peak_rss_bytes"] = peak,
            // Gradients, optimizer state and activations: what the steps added on top of the built model.
            ["step_growth_bytes"] = peak - rssBefore,
            ["trainable"] = parameters.Sum(p => p.numel()),
            ["all"] = trained.parameters().Sum(p => p.numel()),
        }));
        return 0;
    }
}
