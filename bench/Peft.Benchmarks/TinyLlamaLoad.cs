// The TinyLlama-1.1B-shaped loading benchmark: writes a bf16 checkpoint of random weights in two shards (once),
// then measures, each in a fresh child process so that peak RSS is the measured work's alone, in interleaved rounds:
// a warm raw read of the shard files, PeftModels.LoadPretrained in bf16 with its pages populated and lazily mapped,
// and pread into a tensor per weight; each load followed by a pass that touches every page of every weight.
using System.Diagnostics;
using System.Globalization;
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

    /// <summary>The child variants, run in interleaved rounds: the baseline first.</summary>
    private static readonly string[] Variants = ["raw-read", "load", "load-lazy", "read-into"];

    /// <summary>Writes the checkpoint (unless present), then runs the raw read and the loads in child processes.</summary>
    public static Dictionary<string, object> Run()
    {
        var write = Stopwatch.StartNew();
        var written = EnsureCheckpoint(Directory);
        write.Stop();
        var files = System.IO.Directory.GetFiles(Directory, "*.safetensors").Sum(f => new FileInfo(f).Length);
        var rounds = int.TryParse(Environment.GetEnvironmentVariable("PEFT_BENCH_LOAD_ROUNDS"), out var n) ? n : 5;
        var runs = Variants.ToDictionary(v => v, _ => new List<Dictionary<string, double>>());
        for (var round = 0; round < rounds; round++)
        {
            foreach (var variant in Variants) runs[variant].Add(Child(variant));
        }
        // Medians over the rounds of every figure a child printed.
        var median = runs.ToDictionary(kv => kv.Key, kv => kv.Value[0].Keys.ToDictionary(k => k, k => Measure.Median(kv.Value.Select(r => r[k]).ToList())));
        var raw = median["raw-read"];
        var result = new Dictionary<string, object>
        {
            ["checkpoint_bytes"] = files,
            ["checkpoint_written_s"] = written ? write.Elapsed.TotalSeconds : 0.0,
            ["rounds"] = rounds,
            ["parameters"] = median["load"]["parameters"],
        };
        foreach (var (variant, figures) in median)
        {
            foreach (var (key, value) in figures.Where(kv => kv.Key != "parameters" && kv.Key != "touched"))
            {
                result[$"{variant.Replace('-', '_')}.{key}"] = value;
            }
        }
        PrintTable(median);
        foreach (var variant in Variants.Skip(1))
        {
            var figures = median[variant];
            result[$"{variant}_returned_over_raw_read"] = figures["returned_s"] / raw["seconds"];
            result[$"{variant}_touched_over_raw_read"] = figures["seconds"] / raw["seconds"];
            result[$"{variant}_touched_cpu_over_raw_read_cpu"] = figures["cpu_s"] / raw["cpu_s"];
        }
        return result;
    }

    // Medians per variant, and where LoadPretrained's time went (the populated load's phases).
    private static void PrintTable(Dictionary<string, Dictionary<string, double>> median)
    {
        static string Gb(double bytes) => (bytes / 1e9).ToString("F2", CultureInfo.InvariantCulture);
        static string S(double seconds) => seconds.ToString("F3", CultureInfo.InvariantCulture);
        var raw = median["raw-read"];
        Console.WriteLine("variant      returned s (cpu)      + every page touched s (cpu)   ratio   RSS at return   peak RSS   torch init s");
        foreach (var (variant, f) in median)
        {
            var returned = f.TryGetValue("returned_s", out var r) ? $"{S(r)} ({S(f["returned_cpu_s"])})" : "";
            var returnedRss = f.TryGetValue("returned_peak_rss_bytes", out var rss) ? Gb(rss) + " GB" : "";
            var init = f.TryGetValue("torch_init_s", out var t) ? S(t) : "";
            Console.WriteLine($"{variant,-12} {returned,-21} {S(f["seconds"]) + " (" + S(f["cpu_s"]) + ")",-30} {(f["seconds"] / raw["seconds"]).ToString("F2", CultureInfo.InvariantCulture),5}   {returnedRss,-15} {Gb(f["peak_rss_bytes"])} GB   {init}");
        }
        Console.WriteLine("load phase   wall s   cpu s   spans");
        foreach (var (key, wall) in median["load"].Where(kv => kv.Key.StartsWith("phase_", StringComparison.Ordinal) && kv.Key.EndsWith("_s", StringComparison.Ordinal) && !kv.Key.EndsWith("_cpu_s", StringComparison.Ordinal)))
        {
            var name = key["phase_".Length..^"_s".Length];
            Console.WriteLine($"{name,-12} {S(wall)}    {S(median["load"][$"phase_{name}_cpu_s"])}   {median["load"][$"phase_{name}_count"]}");
        }
    }

    /// <summary>
    /// The child side, on a warm page cache; prints one JSON object. <c>raw-read</c>: the files read through a 16 MiB
    /// buffer. <c>load</c>: <c>LoadPretrained</c> in bf16 (pages populated as each weight is read, the default).
    /// <c>load-lazy</c>: the same with <see cref="ModelLoadOptions.PopulatePages"/> off. <c>read-into</c>: the
    /// alternative to mapping, every tensor read with <c>pread</c> into a tensor of its own. Each of the last three then
    /// reads one byte of every page of every weight, as a first forward would.
    /// </summary>
    public static int ChildMain(string what)
    {
        var result = new Dictionary<string, double>();
        ReadAll(new byte[16 << 20]);    // warm the page cache, the same for every variant
        if (what != "raw-read")
        {
            // libtorch's native libraries load on the first torch call: a cost of the process, timed apart.
            var init = Stopwatch.StartNew();
            using (torch.zeros(1)) result["torch_init_s"] = init.Elapsed.TotalSeconds;
        }
        var startCpu = Environment.CpuUsage.TotalTime.TotalSeconds;
        var clock = Stopwatch.StartNew();
        if (what == "raw-read")
        {
            ReadAll(new byte[16 << 20]);
        }
        else
        {
            using var phases = new PhaseListener();
            var weights = what switch
            {
                "load" or "load-lazy" => Load(populate: what == "load"),
                "read-into" => ReadInto(),
                _ => throw new ArgumentException($"unknown child '{what}'"),
            };
            result["returned_s"] = clock.Elapsed.TotalSeconds;
            result["returned_cpu_s"] = Environment.CpuUsage.TotalTime.TotalSeconds - startCpu;
            result["returned_peak_rss_bytes"] = PeakRss();
            phases.AddTo(result);
            result["touched"] = Touch(weights);
            result["parameters"] = weights.Sum(p => p.numel());
            if (weights.Any(p => p.dtype != ScalarType.BFloat16)) throw new InvalidOperationException("not all bf16");
        }
        result["seconds"] = clock.Elapsed.TotalSeconds;
        // This machine is shared: CPU seconds (user + system) are the work itself, wall seconds include the waiting.
        result["cpu_s"] = Environment.CpuUsage.TotalTime.TotalSeconds - startCpu;
        result["peak_rss_bytes"] = PeakRss();
        Console.WriteLine(JsonSerializer.Serialize(result));
        return 0;
    }

    private static List<Tensor> Load(bool populate) =>
        PeftModels.Default.LoadPretrained(Directory, TaskType.CausalLM,
            new ModelLoadOptions { DType = ModelDType.BFloat16, LowCpuMemoryUsage = true, PopulatePages = populate })
            .parameters().Select(p => (Tensor)p).ToList();

    // Reading instead of mapping: a tensor per weight, filled by positioned reads (the kernel's copy from the page cache).
    private static List<Tensor> ReadInto()
    {
        var tensors = new List<Tensor>();
        foreach (var file in System.IO.Directory.GetFiles(Directory, "*.safetensors").Order(StringComparer.Ordinal))
        {
            var header = SafeTensors.ReadHeader(file);
            using var handle = File.OpenHandle(file);
            foreach (var (name, info) in header.Tensors)
            {
                var tensor = torch.empty(info.Shape.ToArray(), ScalarType.BFloat16);
                var span = tensor.bytes;
                var offset = header.DataOffset + info.Begin;
                for (var done = 0; done < span.Length;) done += RandomAccess.Read(handle, span[done..], offset + done);
                tensors.Add(tensor);
            }
        }
        return tensors;
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
