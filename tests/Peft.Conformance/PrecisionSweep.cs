using System.Globalization;
using System.Text.Json.Nodes;
using Peft.Checkpoints;
using Peft.Methods.Lora;
using Peft.Modeling;
using TorchSharp;
using static TorchSharp.torch;

namespace Peft.Conformance;

/// <summary>
/// A development tool (not run by CI) behind docs/COMPATIBILITY.md, "Float32 exactness: the hidden-case gaps": builds
/// models of the hidden reference cases' sizes (3 layers, 6 heads, hidden 48, vocab 160; Llama with 3 KV heads) with
/// transformers' initialisation, the issue's LoRA on them (init_lora_weights false plus noise, as the fixtures have), and a
/// 2 × L batch with row 1 right-padded, then prints per seed how far each gradient moves between the explicit and the fused
/// attention and between float32 and float64 (max|a − b| / max|b| per tensor), how many gradient elements change sign in
/// float32, and for T5 the 3-step AdamW loss trace in each precision.
/// </summary>
internal static class PrecisionSweep
{
    private const int Vocab = 160;

    /// <summary>
    /// The fixture adapters' weights have a standard deviation about 0.2 above their initial one (e.g. gpt2-clm-rslora's
    /// lora_A 0.22 where kaiming-uniform gives 0.10): the noise the reference's writer added.
    /// </summary>
    private const double AdapterNoise = 0.2;

    private static readonly (string A, string B)[] Pairs =
        [("Eager64", "Sdpa64"), ("Eager32", "Sdpa32"), ("Eager32", "Eager64"), ("Sdpa32", "Sdpa64")];

    /// <summary>
    /// <c>precision-sweep &lt;fixtures-dir&gt; gpt2|llama|t5 &lt;seeds&gt; &lt;lengths, e.g. 8,16,24&gt; [keep-dir]</c>; with keep-dir,
    /// each case is left there (model/, adapter/, io.safetensors with the inputs, grad.* of the float64 run and grad32.* of
    /// the float32 one) for tools/lora_precision.py.
    /// </summary>
    public static int Run(string[] args)
    {
        if (args.Length is < 4 or > 5 || args[1] is not ("gpt2" or "llama" or "t5"))
        {
            Console.Error.WriteLine("usage: Peft.Conformance precision-sweep <fixtures-dir> gpt2|llama|t5 <seeds> <lengths, e.g. 8,16,24> [keep-dir]");
            return 2;
        }
        var (fixtures, arch, seeds) = (args[0], args[1], int.Parse(args[2], CultureInfo.InvariantCulture));
        var lengths = args[3].Split(',').Select(s => int.Parse(s, CultureInfo.InvariantCulture)).ToArray();
        var keep = args.Length == 5 ? args[4] : null;
        foreach (var length in lengths)
        {
            for (int seed = 0; seed < seeds; seed++)
            {
                using var scope = torch.NewDisposeScope();
                var root = Directory.CreateTempSubdirectory("peft-precision-").FullName;
                try
                {
                    Console.WriteLine(RunOne(fixtures, arch, root, seed, length, keep));
                }
                finally
                {
                    Directory.Delete(root, recursive: true);
                }
            }
        }
        return 0;
    }

    private static string RunOne(string fixtures, string arch, string root, int seed, int length, string? keep)
    {
        var (task, inputs) = Write(fixtures, arch, root, seed, length);
        var runs = new Dictionary<string, Dictionary<string, Tensor>>();
        foreach (var implementation in new[] { AttentionImplementation.Eager, AttentionImplementation.Sdpa })
        {
            foreach (var dtype in new[] { ScalarType.Float32, ScalarType.Float64 })
            {
                runs[$"{implementation}{(dtype == ScalarType.Float32 ? 32 : 64)}"] = Gradients(root, task, inputs, implementation, dtype);
            }
        }
        // The tensor each issue names (for T5, whose issue names none, the first LoRA of the encoder).
        var focus = arch switch { "gpt2" => "h.0.attn.c_attn.lora_A", "llama" => "layers.0.self_attn.k_proj.lora_A", _ => "encoder.block.0.layer.0.SelfAttention.q.lora_A" };
        var line = FormattableString.Invariant($"L={length} seed={seed}");
        foreach (var (a, b) in Pairs)
        {
            var (worst, worstName, focused) = (0.0, "", double.NaN);
            foreach (var (name, reference) in runs[b])
            {
                var relative = Relative(runs[a][name], reference);
                if (relative > worst) (worst, worstName) = (relative, name);
                if (name.Contains(focus, StringComparison.Ordinal)) focused = relative;
            }
            line += FormattableString.Invariant($" | {a}-{b}: max {worst:E2} ({Short(worstName)}) {focus} {focused:E2}");
        }
        // Adam's first step is about lr·sign(g): an element whose float32 sign differs from float64's moves the trace.
        line += FormattableString.Invariant($" | sign flips: Eager32 {SignFlips(runs["Eager64"], runs["Eager32"])}, Sdpa32 {SignFlips(runs["Eager64"], runs["Sdpa32"])}");
        if (arch == "t5")
        {
            foreach (var (implementation, dtype, label) in new[] { (AttentionImplementation.Eager, ScalarType.Float32, "Eager32"), (AttentionImplementation.Eager, ScalarType.Float64, "Eager64"), (AttentionImplementation.Sdpa, ScalarType.Float32, "Sdpa32") })
            {
                line += $" | trace {label} [{string.Join(", ", Trace(root, task, inputs, implementation, dtype).Select(x => x.ToString("F5", CultureInfo.InvariantCulture)))}]";
            }
        }
        if (keep is not null) Keep(Path.Combine(keep, $"{arch}-L{length}-s{seed}"), root, inputs, runs);
        return line;
    }

    private static long SignFlips(Dictionary<string, Tensor> precise, Dictionary<string, Tensor> rounded) =>
        precise.Sum(e => (e.Value.sign() != rounded[e.Key].to(ScalarType.Float64).sign()).sum().item<long>());

    private static string Short(string name) => name.Replace("base_model.model.", "", StringComparison.Ordinal).Replace(".default.weight", "", StringComparison.Ordinal);

    private static double Relative(Tensor a, Tensor b)
    {
        var scale = b.abs().max().to(ScalarType.Float64).item<double>();
        return (a.to(ScalarType.Float64) - b.to(ScalarType.Float64)).abs().max().item<double>() / Math.Max(scale, 1e-30);
    }

    private static Dictionary<string, Tensor> Gradients(string root, TaskType task, ModelInputs inputs, AttentionImplementation implementation, ScalarType dtype)
    {
        var peft = Load(root, task, implementation, dtype);
        ConformanceRunner.TrainWithoutDropout(peft);
        peft.call(inputs).Loss!.backward();
        return peft.TrainableParameters().ToDictionary(p => p.Name, p => p.Parameter.grad!.detach().to(ScalarType.Float64));
    }

    private static double[] Trace(string root, TaskType task, ModelInputs inputs, AttentionImplementation implementation, ScalarType dtype) =>
        ConformanceRunner.RunAdamW(Load(root, task, implementation, dtype), task, inputs).Losses;

    private static PeftModel Load(string root, TaskType task, AttentionImplementation implementation, ScalarType dtype)
    {
        var model = PeftModels.Default.LoadPretrained(Path.Combine(root, "model"), task, c => c with { AttnImplementation = implementation });
        model.to(dtype);
        var peft = PeftModels.Default.FromPretrained(model, Path.Combine(root, "adapter"), isTrainable: true);
        peft.to(dtype);
        return peft;
    }

    private static void Keep(string target, string root, ModelInputs inputs, Dictionary<string, Dictionary<string, Tensor>> runs)
    {
        foreach (var folder in new[] { "model", "adapter" })
        {
            Directory.CreateDirectory(Path.Combine(target, folder));
            foreach (var file in Directory.GetFiles(Path.Combine(root, folder))) File.Copy(file, Path.Combine(target, folder, Path.GetFileName(file)), overwrite: true);
        }
        var io = new Dictionary<string, Tensor> { ["input.input_ids"] = inputs.InputIds!, ["input.attention_mask"] = inputs.AttentionMask!, ["input.labels"] = inputs.Labels! };
        foreach (var (name, gradient) in runs["Eager64"]) io["grad." + name] = gradient.contiguous();
        foreach (var (name, gradient) in runs["Eager32"]) io["grad32." + name] = gradient.to(ScalarType.Float32).contiguous();
        SafeTensors.Save(Path.Combine(target, "io.safetensors"), io);
    }

    /// <summary>Writes root/model (the hidden cases' sizes, transformers' initialisation) and root/adapter; returns the batch.</summary>
    private static (TaskType Task, ModelInputs Inputs) Write(string fixtures, string arch, string root, int seed, int length)
    {
        var fixture = Path.Combine(fixtures, "models", arch switch { "gpt2" => "gpt2-clm", "llama" => "llama-clm", _ => "t5-s2s" });
        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(fixture, "config.json")))!.AsObject();
        config["vocab_size"] = Vocab;
        var sizes = arch switch
        {
            "gpt2" => new Dictionary<string, int> { ["n_embd"] = 48, ["n_head"] = 6, ["n_layer"] = 3 },
            "llama" => new Dictionary<string, int> { ["hidden_size"] = 48, ["num_attention_heads"] = 6, ["num_key_value_heads"] = 3, ["num_hidden_layers"] = 3, ["intermediate_size"] = 96, ["head_dim"] = 8 },
            _ => new Dictionary<string, int> { ["d_model"] = 48, ["num_heads"] = 6, ["num_layers"] = 3, ["num_decoder_layers"] = 3, ["d_ff"] = 96, ["d_kv"] = 8 },
        };
        foreach (var (key, value) in sizes) config[key] = value;
        var modelDirectory = Path.Combine(root, "model");
        Directory.CreateDirectory(modelDirectory);
        File.WriteAllText(Path.Combine(modelDirectory, "config.json"), config.ToJsonString());
        var task = arch == "t5" ? TaskType.Seq2SeqLM : TaskType.CausalLM;
        var (architecture, parsed) = PeftModels.Default.ReadConfig(modelDirectory);
        torch.manual_seed(1000 + seed);
        using (var model = architecture.Build(parsed, task))
        {
            using (torch.no_grad())
            {
                foreach (var (name, parameter) in model.named_parameters())
                {
                    if (name.EndsWith(".bias", StringComparison.Ordinal)) parameter.zero_();
                    else if (name.Contains("ln_", StringComparison.Ordinal) || name.Contains("norm", StringComparison.Ordinal)) parameter.fill_(1.0);
                    else parameter.normal_(0, arch == "t5" ? T5Std(name) : name.Contains("c_proj.weight", StringComparison.Ordinal) ? 0.02 / Math.Sqrt(2 * 3) : 0.02);
                }
            }
            PeftModels.SavePretrained(model, modelDirectory, modelDirectory);
        }

        LoraConfig lora = arch switch
        {
            "gpt2" => new LoraConfig { R = 8, LoraAlpha = 16, UseRsLora = true, FanInFanOut = true, TargetModules = new[] { "c_attn" }, InitLoraWeights = false, TaskType = task },
            "llama" => new LoraConfig { R = 8, LoraAlpha = 16, TargetModules = "all-linear", InitLoraWeights = false, TaskType = task },
            _ => new LoraConfig { R = 8, LoraAlpha = 16, TargetModules = new[] { "q", "v" }, InitLoraWeights = false, TaskType = task },
        };
        var peft = PeftModels.Default.GetPeftModel(PeftModels.Default.LoadPretrained(modelDirectory, task), lora);
        using (torch.no_grad())
        {
            foreach (var (_, parameter) in peft.TrainableParameters()) parameter.add_(torch.randn_like(parameter) * AdapterNoise);
        }
        peft.SavePretrained(Path.Combine(root, "adapter"));

        var ids = torch.randint(1, Vocab, [2, length], dtype: ScalarType.Int64);
        var mask = torch.ones(2, length, dtype: ScalarType.Int64);
        mask[1, TensorIndex.Slice(length - 2)] = 0;
        ids[1, TensorIndex.Slice(length - 2)] = 0;
        if (arch != "t5")
        {
            var labels = ids.clone();
            labels[1, TensorIndex.Slice(length - 2)] = -100;
            return (task, new ModelInputs { InputIds = ids, AttentionMask = mask, Labels = labels });
        }
        var target = Math.Max(5, length - 3);
        var t5Labels = torch.randint(2, Vocab, [2, target], dtype: ScalarType.Int64);
        t5Labels[1, target - 1] = -100;
        var decoder = torch.zeros(2, target, dtype: ScalarType.Int64);
        decoder[TensorIndex.Colon, TensorIndex.Slice(1)] = t5Labels[TensorIndex.Colon, TensorIndex.Slice(0, target - 1)];
        decoder.masked_fill_(decoder == -100, 0);
        return (task, new ModelInputs { InputIds = ids, AttentionMask = mask, Labels = t5Labels, DecoderInputIds = decoder });
    }

    /// <summary>transformers' T5 initialisation (initializer_factor 1) for d_model 48, d_kv 8, 6 heads, d_ff 96.</summary>
    private static double T5Std(string name)
    {
        const double model = 48, kv = 8, heads = 6, feedForward = 96;
        if (name.Contains("shared", StringComparison.Ordinal) || name.Contains("embed_tokens", StringComparison.Ordinal) || name.Contains("lm_head", StringComparison.Ordinal)) return 1.0;
        if (name.Contains(".q.", StringComparison.Ordinal)) return Math.Pow(model * kv, -0.5);
        if (name.Contains(".k.", StringComparison.Ordinal) || name.Contains(".v.", StringComparison.Ordinal) || name.Contains("relative_attention_bias", StringComparison.Ordinal)) return Math.Pow(model, -0.5);
        if (name.Contains(".o.", StringComparison.Ordinal)) return Math.Pow(heads * kv, -0.5);
        if (name.Contains(".wi", StringComparison.Ordinal)) return Math.Pow(model, -0.5);
        if (name.Contains(".wo", StringComparison.Ordinal)) return Math.Pow(feedForward, -0.5);
        throw new InvalidOperationException($"no T5 initialisation for {name}");
    }
}
