// QLoRA at TinyLlama-1.1B's shape: the tinyllama-load checkpoint loaded with an NF4 (double-quantized, bf16
// compute) base and with a bf16 base, each in a fresh child process: resident memory after the load and at a LoRA
// step's peak, and the step time (LoRA r=16 on q/k/v/o, batch 1 × 16 tokens, AdamW), side by side in one run.
using System.Diagnostics;
using System.Text.Json;
using Peft;
using Peft.Methods.Lora;
using Peft.Modeling;
using Peft.Quantization;
using TorchSharp;
using static TorchSharp.torch;

internal static class TinyLlamaQLora
{
    private const int Tokens = 16;

    /// <summary>Ensures the checkpoint, then runs the NF4 and the bf16 child.</summary>
    public static Dictionary<string, object> Run()
    {
        TinyLlamaLoad.EnsureCheckpoint(TinyLlamaLoad.Directory);
        var nf4 = TinyLlamaLoad.Child("qlora-nf4");
        var bf16 = TinyLlamaLoad.Child("qlora-bf16");
        var result = new Dictionary<string, object>();
        foreach (var (key, value) in nf4) result["nf4_" + key] = value;
        foreach (var (key, value) in bf16) result["bf16_" + key] = value;
        result["rss_after_load_nf4_over_bf16"] = nf4["rss_after_load_bytes"] / bf16["rss_after_load_bytes"];
        result["peak_rss_nf4_over_bf16"] = nf4["peak_rss_bytes"] / bf16["peak_rss_bytes"];
        result["step_nf4_over_bf16"] = nf4["step_s"] / bf16["step_s"];
        return result;
    }

    /// <summary>One child: load, touch the base weights, one warm-up step, one timed step; one JSON line.</summary>
    public static int ChildMain(bool quantized)
    {
        var result = new Dictionary<string, double>();
        var startCpu = Process.GetCurrentProcess().TotalProcessorTime.TotalSeconds;
        var clock = Stopwatch.StartNew();
        var model = PeftModels.Default.LoadPretrained(TinyLlamaLoad.Directory, TaskType.CausalLM, new ModelLoadOptions
        {
            DType = ModelDType.BFloat16,
            LowCpuMemoryUsage = true,
            Quantization = quantized ? QuantizationOptions.QLoRA : null,
        });
        result["load_s"] = clock.Elapsed.TotalSeconds;
        Console.Error.WriteLine($"loaded in {result["load_s"]:F1} s");
        // The bf16 weights are views of the mapped files: page them in, as the first forward would, before measuring.
        foreach (var p in model.parameters().Where(p => p.is_floating_point()))
        {
            var bytes = p.bytes;
            long sum = 0;
            for (var i = 0; i < bytes.Length; i += 4096) sum += bytes[i];
            result["touched"] = sum;
        }
        result["rss_after_load_bytes"] = Status("VmRSS");
        result["rss_anon_after_load_bytes"] = Status("RssAnon");
        Console.Error.WriteLine($"RSS after load {result["rss_after_load_bytes"] / 1e9:F2} GB");
        result["quantized_bytes"] = ModelQuantization.QuantizedBytes(model);
        result["floating_point_bytes"] = model.parameters().Where(p => p.is_floating_point()).Sum(p => p.numel() * p.ElementSize);

        torch.manual_seed(0);
        var peft = PeftModels.Default.GetPeftModel(model, new LoraConfig
        {
            R = 16, LoraAlpha = 32, TaskType = TaskType.CausalLM, TargetModules = new[] { "q_proj", "k_proj", "v_proj", "o_proj" },
        });
        peft.train();
        var ids = randint(32000, [1, Tokens]);
        var inputs = new ModelInputs { InputIds = ids, AttentionMask = ones_like(ids), Labels = ids };
        using var optimizer = optim.AdamW(peft.TrainableParameters().Select(p => p.Parameter), lr: 1e-4);
        for (var step = 0; step < 2; step++)
        {
            clock.Restart();
            using var scope = NewDisposeScope();
            optimizer.zero_grad();
            var loss = peft.call(inputs).Loss!;
            loss.backward();
            optimizer.step();
            result[step == 0 ? "first_step_s" : "step_s"] = clock.Elapsed.TotalSeconds;
            Console.Error.WriteLine($"step {step}: {clock.Elapsed.TotalSeconds:F1} s, peak RSS {Status("VmHWM") / 1e9:F2} GB");
            result["loss"] = loss.item<float>();
        }
        result["peak_rss_bytes"] = Status("VmHWM");
        result["cpu_s"] = Process.GetCurrentProcess().TotalProcessorTime.TotalSeconds - startCpu;
        Console.WriteLine(JsonSerializer.Serialize(result));
        return 0;
    }

    private static double Status(string key)
    {
        var line = File.ReadLines("/proc/self/status").First(l => l.StartsWith(key + ":", StringComparison.Ordinal));
        return long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1]) * 1024.0;
    }
}
