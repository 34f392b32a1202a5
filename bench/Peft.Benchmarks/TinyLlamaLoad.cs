// The TinyLlama-1.1B-shaped loading benchmark: writes a bf16 checkpoint of random weights in two shards (once),
// then measures, each in a fresh child process so that peak RSS is the measured work's alone: a warm raw read of
// the shard files, and PeftModels.LoadPretrained in bf16 followed by a pass that touches every weight.
using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Nodes;
using Peft;
using Peft.Checkpoints;
using Peft.Modeling;
using TorchSharp;
using static TorchSharp.torch;

internal static class TinyLlamaLoad
{
    /// <summary>TinyLlama-1.1B's layer count.</summary>
    public const int FullLayers = 22;

    private const int Hidden = 2048, Heads = 32, KeyValueHeads = 4, Intermediate = 5632, Vocab = 32000;

    public static string Directory => Environment.GetEnvironmentVariable("PEFT_BENCH_TINYLLAMA") ?? Path.Combine(Path.GetTempPath(), "peft-bench-tinyllama");

    /// <summary>The checkpoint of <paramref name="layers"/> layers (TinyLlama's shapes otherwise) beside the full one.</summary>
    public static string DirectoryFor(int layers) => layers == FullLayers ? Directory : $"{Directory}-{layers}-layers";

    /// <summary>Writes the checkpoint (unless present), then runs the raw read and the load in child processes.</summary>
    public static Dictionary<string, object> Run()
    {
        var write = Stopwatch.StartNew();
        var written = EnsureCheckpoint(Directory);
        write.Stop();
        var files = System.IO.Directory.GetFiles(Directory, "*.safetensors").Sum(f => new FileInfo(f).Length);
        var raw = Child("raw-read");
        var load = Child("load");
        return new()
        {
            ["checkpoint_bytes"] = files,
            ["checkpoint_written_s"] = written ? write.Elapsed.TotalSeconds : 0.0,
            ["raw_read_warm_s"] = raw["seconds"],
            ["raw_read_cpu_s"] = raw["cpu_s"],
            ["raw_read_peak_rss_bytes"] = raw["peak_rss_bytes"],
            ["load_s"] = load["load_s"],
            ["load_and_touch_s"] = load["seconds"],
            ["load_and_touch_cpu_s"] = load["cpu_s"],
            ["load_peak_rss_bytes"] = load["peak_rss_bytes"],
            ["load_and_touch_cpu_over_raw_read_cpu"] = load["cpu_s"] / raw["cpu_s"],
            ["load_and_touch_over_raw_read"] = load["seconds"] / raw["seconds"],
            ["parameters"] = load["parameters"],
        };
    }

    /// <summary>The child side: <c>raw-read</c> or <c>load</c>; prints one JSON object.</summary>
    public static int ChildMain(string what)
    {
        var result = new Dictionary<string, double>();
        if (what == "raw-read") ReadAll(new byte[16 << 20]);    // warm the page cache
        else if (what == "load") ReadAll(new byte[16 << 20]);   // the same warm page cache as the raw read
        var startCpu = Environment.CpuUsage.TotalTime.TotalSeconds;
        if (what == "raw-read")
        {
            var buffer = new byte[16 << 20];
            var clock = Stopwatch.StartNew();
            ReadAll(buffer);
            result["seconds"] = clock.Elapsed.TotalSeconds;
        }
        else if (what == "read-tensors")
        {
            var clock = Stopwatch.StartNew();
            using var checkpoint = MappedCheckpoint.Open(Directory);
            result["open_s"] = clock.Elapsed.TotalSeconds;
            var tensors = checkpoint.Names.Select(n => checkpoint.Read(n, ScalarType.BFloat16, torch.CPU)).ToList();
            result["read_s"] = clock.Elapsed.TotalSeconds;
            result["touched"] = Touch(tensors);
            result["seconds"] = clock.Elapsed.TotalSeconds;
        }
        else
        {
            // libtorch's native libraries load on the first torch call: a cost of the process, not of this load.
            var init = Stopwatch.StartNew();
            using (torch.zeros(1)) result["torch_init_s"] = init.Elapsed.TotalSeconds;
            startCpu = Environment.CpuUsage.TotalTime.TotalSeconds;
            using var phases = new PhaseListener();
            var clock = Stopwatch.StartNew();
            var model = PeftModels.Default.LoadPretrained(Directory, TaskType.CausalLM, new ModelLoadOptions { DType = ModelDType.BFloat16, LowCpuMemoryUsage = true });
            result["load_s"] = clock.Elapsed.TotalSeconds;
            result["load_cpu_s"] = Environment.CpuUsage.TotalTime.TotalSeconds - startCpu;
            result["load_peak_rss_bytes"] = PeakRss();
            phases.AddTo(result);
            // Weights in the stored dtype are views of the mapped files: touch every page, as a first forward would.
            result["touched"] = Touch(model.parameters());
            result["seconds"] = clock.Elapsed.TotalSeconds;
            result["parameters"] = model.parameters().Sum(p => p.numel());
            if (model.parameters().Any(p => p.dtype != ScalarType.BFloat16)) throw new InvalidOperationException("not all bf16");
        }
        result["peak_rss_bytes"] = PeakRss();
        // This machine is shared: CPU seconds (user + system) are the work itself, wall seconds include the waiting.
        result["cpu_s"] = Environment.CpuUsage.TotalTime.TotalSeconds - startCpu;
        Console.WriteLine(JsonSerializer.Serialize(result));
        return 0;
    }

    /// <summary>Wall and CPU seconds of each <see cref="LoadTrace"/> span, summed by name (read and assign run once per weight).</summary>
    private sealed class PhaseListener : IDisposable
    {
        private readonly ActivityListener _listener;
        private readonly Dictionary<string, (int Count, double Wall, double Cpu)> _totals = [];

        public PhaseListener()
        {
            _listener = new()
            {
                ShouldListenTo = source => source.Name == LoadTrace.SourceName,
                Sample = (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllData,
                ActivityStarted = activity => activity.SetCustomProperty("cpu", Environment.CpuUsage.TotalTime.TotalSeconds),
                ActivityStopped = activity =>
                {
                    var cpu = Environment.CpuUsage.TotalTime.TotalSeconds - (double)activity.GetCustomProperty("cpu")!;
                    var (count, wall, cpuSum) = _totals.GetValueOrDefault(activity.OperationName);
                    _totals[activity.OperationName] = (count + 1, wall + activity.Duration.TotalSeconds, cpuSum + cpu);
                },
            };
            ActivitySource.AddActivityListener(_listener);
        }

        public void AddTo(Dictionary<string, double> result)
        {
            foreach (var (name, (count, wall, cpu)) in _totals)
            {
                result[$"phase_{name}_s"] = wall;
                result[$"phase_{name}_cpu_s"] = cpu;
                result[$"phase_{name}_count"] = count;
            }
        }

        public void Dispose() => _listener.Dispose();
    }

    // Reads one byte of every 4 KiB page of each (CPU, contiguous) tensor: the page-ins a first use would cost.
    private static double Touch(IEnumerable<Tensor> tensors)
    {
        long sum = 0;
        foreach (var tensor in tensors)
        {
            var bytes = tensor.bytes;
            for (var i = 0; i < bytes.Length; i += 4096) sum += bytes[i];
        }
        return sum;
    }

    private static void ReadAll(byte[] buffer)
    {
        foreach (var file in System.IO.Directory.GetFiles(Directory, "*.safetensors"))
        {
            using var stream = new FileStream(file, FileMode.Open, FileAccess.Read, FileShare.Read, 1, FileOptions.SequentialScan);
            while (stream.Read(buffer, 0, buffer.Length) > 0)
            {
            }
        }
    }

    internal static Dictionary<string, double> Child(string what)
    {
        var start = new ProcessStartInfo(Environment.ProcessPath!, ["--child", what]) { RedirectStandardOutput = true };
        using var process = Process.Start(start)!;
        var output = process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        if (process.ExitCode != 0) throw new InvalidOperationException($"child '{what}' exited with {process.ExitCode}: {output}");
        return JsonSerializer.Deserialize<Dictionary<string, double>>(output.Trim().Split('\n')[^1])!;
    }

    /// <summary>VmHWM from /proc/self/status: the process's peak resident set.</summary>
    public static double PeakRss()
    {
        var line = File.ReadLines("/proc/self/status").First(l => l.StartsWith("VmHWM:", StringComparison.Ordinal));
        return long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1]) * 1024.0;
    }

    /// <summary>Writes config.json, two bf16 shards and the index, one shard's tensors in memory at a time.</summary>
    internal static bool EnsureCheckpoint(string directory, int layers = FullLayers)
    {
        if (File.Exists(Path.Combine(directory, ModelWeights.IndexFileName))) return false;
        System.IO.Directory.CreateDirectory(directory);
        var config = new JsonObject
        {
            ["model_type"] = "llama", ["architectures"] = new JsonArray("LlamaForCausalLM"), ["hidden_size"] = Hidden,
            ["intermediate_size"] = Intermediate, ["num_hidden_layers"] = layers, ["num_attention_heads"] = Heads,
            ["num_key_value_heads"] = KeyValueHeads, ["vocab_size"] = Vocab, ["max_position_embeddings"] = 2048,
            ["rms_norm_eps"] = 1e-5, ["rope_theta"] = 10000.0, ["tie_word_embeddings"] = false, ["torch_dtype"] = "bfloat16",
            ["bos_token_id"] = 1, ["eos_token_id"] = 2,
        };
        File.WriteAllText(Path.Combine(directory, "config.json"), config.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));

        var headDim = Hidden / Heads;
        IEnumerable<(string, long[])> LayerShapes(int i) =>
        [
            ($"model.layers.{i}.self_attn.q_proj.weight", [Hidden, Hidden]),
            ($"model.layers.{i}.self_attn.k_proj.weight", [KeyValueHeads * headDim, Hidden]),
            ($"model.layers.{i}.self_attn.v_proj.weight", [KeyValueHeads * headDim, Hidden]),
            ($"model.layers.{i}.self_attn.o_proj.weight", [Hidden, Hidden]),
            ($"model.layers.{i}.mlp.gate_proj.weight", [Intermediate, Hidden]),
            ($"model.layers.{i}.mlp.up_proj.weight", [Intermediate, Hidden]),
            ($"model.layers.{i}.mlp.down_proj.weight", [Hidden, Intermediate]),
            ($"model.layers.{i}.input_layernorm.weight", [Hidden]),
            ($"model.layers.{i}.post_attention_layernorm.weight", [Hidden]),
        ];
        var first = new List<(string Name, long[] Shape)> { ("model.embed_tokens.weight", new long[] { Vocab, Hidden }) };
        first.AddRange(Enumerable.Range(0, layers / 2).SelectMany(LayerShapes));
        var second = Enumerable.Range(layers / 2, layers - layers / 2).SelectMany(LayerShapes).ToList();
        second.Add(("model.norm.weight", new long[] { Hidden }));
        second.Add(("lm_head.weight", new long[] { Vocab, Hidden }));
        var shards = new List<List<(string Name, long[] Shape)>> { first, second };
        torch.manual_seed(0);
        var map = new JsonObject();
        long total = 0;
        for (var s = 0; s < shards.Count; s++)
        {
            var file = $"model-{s + 1:D5}-of-{shards.Count:D5}.safetensors";
            using var scope = torch.NewDisposeScope();
            var tensors = shards[s].Select(t => KeyValuePair.Create(t.Name, t.Shape.Length == 1
                ? torch.ones(t.Shape, ScalarType.BFloat16)
                : (torch.randn(t.Shape, ScalarType.BFloat16) * 0.02))).ToList();
            SafeTensors.Save(Path.Combine(directory, file), tensors, new Dictionary<string, string> { ["format"] = "pt" });
            foreach (var (name, tensor) in tensors)
            {
                map[name] = file;
                total += tensor.numel() * 2;
            }
        }
        var index = new JsonObject { ["metadata"] = new JsonObject { ["total_size"] = total }, ["weight_map"] = map };
        File.WriteAllText(Path.Combine(directory, ModelWeights.IndexFileName), index.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
        return true;
    }
}
