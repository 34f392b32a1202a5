// The TinyLlama-1.1B-shaped train step and prefill (issue 10): the tinyllama-load checkpoint (or one of fewer layers,
// --layers N, same shapes otherwise) under LoRA r=16 on every linear layer, batch 1 × 256 tokens, AdamW, each variant
// in a fresh child process so that its resident memory is its own: a float32 base, a bf16 base, a bf16 base with
// gradient checkpointing (median step time and the steps' peak RSS), and the prefill of 256 tokens on the bf16 base
// with the adapter unmerged and merged.
using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Peft;
using Peft.Methods.Lora;
using Peft.Modeling;
using Peft.Tuners;
using TorchSharp;
using static TorchSharp.torch;

internal static class TinyLlamaStep
{
    private const int Tokens = 256;

    private static readonly string[] Variants = ["fp32", "bf16", "bf16-checkpointing", "prefill"];

    /// <summary>Layers of the model (22 = TinyLlama's own) and timed steps per variant, from --layers and --steps.</summary>
    public static (int Layers, int Steps) Options { get; set; } = (TinyLlamaLoad.FullLayers, 3);

    /// <summary>Removes <c>--layers N</c> and <c>--steps N</c> from <paramref name="args"/> into <see cref="Options"/>.</summary>
    public static string[] TakeOptions(string[] args)
    {
        var rest = new List<string>();
        for (var i = 0; i < args.Length; i++)
        {
            if (args[i] is "--layers" or "--steps" && i + 1 < args.Length && int.TryParse(args[i + 1], CultureInfo.InvariantCulture, out var value) && value > 0)
            {
                Options = args[i] == "--layers" ? Options with { Layers = value } : Options with { Steps = value };
                i++;
            }
            else if (args[i] is "--layers" or "--steps")
            {
                throw new ArgumentException($"{args[i]} takes a positive whole number.");
            }
            else
            {
                rest.Add(args[i]);
            }
        }
        return [.. rest];
    }

    /// <summary>Ensures the checkpoint, then runs every variant in its own child.</summary>
    public static Dictionary<string, object> Run()
    {
        var (layers, steps) = Options;
        var directory = TinyLlamaLoad.DirectoryFor(layers);
        TinyLlamaLoad.EnsureCheckpoint(directory, layers);
        var result = new Dictionary<string, object>
        {
            ["layers"] = layers, ["tokens"] = Tokens, ["timed_steps"] = steps,
            // Peft caps oneDNN at AVX2 unless this is set (src/Peft.Abstractions/Native/OneDnnIsa.cs); bf16 matrix
            // products go through oneDNN, and without AVX-512 they take its reference kernels.
            ["onednn_max_cpu_isa"] = Environment.GetEnvironmentVariable("ONEDNN_MAX_CPU_ISA") ?? "AVX2 (Peft's cap)",
        };
        var children = new Dictionary<string, Dictionary<string, double>>();
        foreach (var variant in Variants)
        {
            Console.Error.WriteLine($"tinyllama-step: {variant} ({layers} layers)");
            children[variant] = Measure.Child("tinyllama-step", variant, layers.ToString(CultureInfo.InvariantCulture), steps.ToString(CultureInfo.InvariantCulture));
            foreach (var (key, value) in children[variant]) result[$"{variant}_{key}"] = value;
        }
        double Step(string variant, string key) => children[variant][key];
        result["bf16_over_fp32_step_peak_rss"] = Step("bf16", "step_peak_rss_bytes") / Step("fp32", "step_peak_rss_bytes");
        result["bf16-checkpointing_over_fp32_step_peak_rss"] = Step("bf16-checkpointing", "step_peak_rss_bytes") / Step("fp32", "step_peak_rss_bytes");
        result["bf16-checkpointing_over_bf16_step_peak_rss"] = Step("bf16-checkpointing", "step_peak_rss_bytes") / Step("bf16", "step_peak_rss_bytes");
        result["bf16_over_fp32_step_time"] = Step("bf16", "step_s") / Step("fp32", "step_s");
        result["bf16-checkpointing_over_bf16_step_time"] = Step("bf16-checkpointing", "step_s") / Step("bf16", "step_s");
        result["prefill_unmerged_over_merged"] = Step("prefill", "unmerged_over_merged");
        result["prefill_unmerged_over_merged_cpu"] = Step("prefill", "unmerged_over_merged_cpu");
        result["prefill_unmerged_unfused_over_merged"] = Step("prefill", "unmerged_unfused_over_merged");
        return result;
    }

    /// <summary>One child: load, LoRA, then the timed steps (or prefills); prints one JSON object.</summary>
    public static int ChildMain(string variant, int layers, int steps)
    {
        torch.set_num_threads(int.Parse(Environment.GetEnvironmentVariable("PEFT_BENCH_THREADS") ?? Environment.ProcessorCount.ToString(CultureInfo.InvariantCulture), CultureInfo.InvariantCulture));
        var result = new Dictionary<string, double>();
        var clock = Stopwatch.StartNew();
        var model = PeftModels.Default.LoadPretrained(TinyLlamaLoad.DirectoryFor(layers), TaskType.CausalLM, new ModelLoadOptions
        {
            DType = variant == "fp32" ? ModelDType.Float32 : ModelDType.BFloat16,
            LowCpuMemoryUsage = true,
        });
        result["load_s"] = clock.Elapsed.TotalSeconds;
        // bf16 weights are views of the mapped files: page them in, as the first forward would, before measuring.
        long touched = 0;
        foreach (var p in model.parameters())
        {
            var bytes = p.bytes;
            for (var i = 0; i < bytes.Length; i += 4096) touched += bytes[i];
        }
        result["touched"] = touched;
        result["parameters"] = model.parameters().Sum(p => p.numel());
        result["rss_after_load_bytes"] = Measure.Memory("VmRSS");

        manual_seed(0);
        var peft = PeftModels.Default.GetPeftModel(model, new LoraConfig
        {
            R = 16, LoraAlpha = 32, TaskType = TaskType.CausalLM, TargetModules = TargetModules.FromPattern(TargetModules.AllLinearValue),
        });
        result["trainable_parameters"] = peft.TrainableParameters().Sum(p => p.Parameter.numel());
        var ids = randint(32000, [1, Tokens]);
        var inputs = new ModelInputs { InputIds = ids, AttentionMask = ones_like(ids), Labels = ids };
        // From here on the peak is the steps' own, not the load's (the float32 load converts from the mapped bf16 files).
        var resetPeak = ResetPeakRss();
        result["peak_reset"] = resetPeak ? 1 : 0;
        if (variant == "prefill") Prefill(peft, inputs, steps, result);
        else Train(peft, inputs, steps, checkpointing: variant == "bf16-checkpointing", result);
        result["step_peak_rss_bytes"] = Measure.Memory();
        Console.WriteLine(JsonSerializer.Serialize(result));
        return 0;
    }

    private static void Train(PeftModel peft, ModelInputs inputs, int steps, bool checkpointing, Dictionary<string, double> result)
    {
        if (checkpointing) peft.GradientCheckpointingEnable();
        peft.train();
        using var optimizer = optim.AdamW(peft.TrainableParameters().Select(p => p.Parameter), lr: 1e-4);
        var times = new List<double>();
        var cpu = new List<double>();
        var process = Process.GetCurrentProcess();
        for (var step = 0; step <= steps; step++)
        {
            process.Refresh();
            var cpuBefore = process.TotalProcessorTime;
            var clock = Stopwatch.StartNew();
            using (var scope = NewDisposeScope())
            {
                optimizer.zero_grad();
                var loss = peft.call(inputs).Loss!;
                loss.backward();
                optimizer.step();
                result["loss"] = loss.item<float>();
            }
            process.Refresh();
            Console.Error.WriteLine($"  step {step}: {clock.Elapsed.TotalSeconds:F1} s, peak RSS {Measure.Memory() / 1e9:F2} GB");
            if (step == 0) result["first_step_s"] = clock.Elapsed.TotalSeconds; // warm-up: oneDNN's kernels, the optimizer state
            else
            {
                times.Add(clock.Elapsed.TotalSeconds);
                cpu.Add((process.TotalProcessorTime - cpuBefore).TotalSeconds);
            }
        }
        result["step_s"] = Measure.Median(times);
        result["step_cpu_s"] = Measure.Median(cpu);
    }

    /// <summary>
    /// The prefill unmerged, merged and unmerged with the fused update off, interleaved round by round (a merge or
    /// unmerge between the timed calls, not timed) so that the load of this shared machine hits every variant alike;
    /// wall and CPU seconds, medians. The first unmerged call still reads the weights the load mapped; every later one
    /// reads the pages the first merge wrote.
    /// </summary>
    private static void Prefill(PeftModel peft, ModelInputs inputs, int runs, Dictionary<string, double> result)
    {
        // LoRA's B starts at zero; a random one makes the merged weights differ from the base (as a trained adapter's do).
        using (no_grad())
        {
            foreach (var (name, p) in peft.named_parameters().Where(p => p.name.Contains("lora_B", StringComparison.Ordinal))) p.normal_(0, 0.01);
        }
        peft.eval();
        var prompt = inputs with { Labels = null };
        using var noGrad = no_grad();
        var unmerged = peft.call(prompt).Logits;                    // warm-up, and the reference logits
        peft.Merge();
        var merged = peft.call(prompt).Logits;
        // Merging rounds the bf16 weights once: the logits agree to bf16's rounding, not exactly.
        result["merged_max_abs_logit_difference"] = (merged.to(ScalarType.Float32) - unmerged.to(ScalarType.Float32)).abs().max().item<float>();
        result["max_abs_logit"] = unmerged.to(ScalarType.Float32).abs().max().item<float>();
        peft.Unmerge();
        // Each variant sets the model up before its timed forward and puts it back after (outside the clock).
        var variants = new (string Name, Action Before, Action After)[]
        {
            ("unmerged", () => { }, () => { }),
            ("merged", () => peft.Merge(), () => peft.Unmerge()),
            ("unmerged_unfused", () => LoraLayer.FusedUpdate = false, () => LoraLayer.FusedUpdate = true),
        };
        var times = variants.ToDictionary(v => v.Name, _ => new List<double>());
        var cpu = variants.ToDictionary(v => v.Name, _ => new List<double>());
        for (var i = 0; i < runs; i++)
        {
            foreach (var (name, before, after) in variants)
            {
                before();
                var cpuBefore = CpuSeconds();
                var clock = Stopwatch.StartNew();
                using (var scope = NewDisposeScope()) peft.call(prompt);
                clock.Stop();
                cpu[name].Add(CpuSeconds() - cpuBefore);
                after();
                times[name].Add(clock.Elapsed.TotalSeconds);
                Console.Error.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  {name}: {times[name][^1]:F2} s (CPU {cpu[name][^1]:F2} s), load {Measure.LoadAverage()}"));
            }
        }
        foreach (var (name, _, _) in variants)
        {
            result[$"{name}_s"] = Measure.Median(times[name]);
            result[$"{name}_cpu_s"] = Measure.Median(cpu[name]);
        }
        result["unmerged_over_merged"] = result["unmerged_s"] / result["merged_s"];
        result["unmerged_over_merged_cpu"] = result["unmerged_cpu_s"] / result["merged_cpu_s"];
        result["unmerged_unfused_over_merged"] = result["unmerged_unfused_s"] / result["merged_s"];
        result["unmerged_unfused_over_merged_cpu"] = result["unmerged_unfused_cpu_s"] / result["merged_cpu_s"];
    }

    /// <summary>
    /// The CPU seconds of the process's threads, summed from /proc/self/task/*/stat (clock ticks). Read right after a
    /// merge, <see cref="Process.TotalProcessorTime"/> counted the merge's seconds into the forward that followed it
    /// (2.7 s of CPU for a 1.3 s forward on one thread, while every thread's own ticks summed to 1.3 s).
    /// </summary>
    private static double CpuSeconds()
    {
        long ticks = 0;
        foreach (var task in Directory.GetDirectories("/proc/self/task"))
        {
            try
            {
                var stat = File.ReadAllText(Path.Combine(task, "stat"));
                var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
                ticks += long.Parse(fields[11], CultureInfo.InvariantCulture) + long.Parse(fields[12], CultureInfo.InvariantCulture);
            }
            catch (IOException)
            {
                // The thread ended between the listing and the read: its ticks are gone from the process's sum alike.
            }
        }
        return ticks / 100.0; // USER_HZ
    }

    /// <summary>Writing 5 to /proc/self/clear_refs resets VmHWM to the current resident set (Linux 4.0+).</summary>
    private static bool ResetPeakRss()
    {
        try
        {
            File.WriteAllText("/proc/self/clear_refs", "5");
            return true;
        }
        catch (IOException)
        {
            return false;
        }
        catch (UnauthorizedAccessException)
        {
            return false;
        }
    }
}
