// Training-step and inference benchmarks, the CPU counterpart of ../shared/bench/hf_peft_train_step.py:
// random weights and token ids; a step is forward + loss + backward + AdamW step. Prints one JSON line
// per workload (median and minimum milliseconds), then the ratios measured side by side in this run.
//   dotnet run --project bench/Peft.Benchmarks -c Release [workload ...]
// tinyllama-load (run only when named) writes a 2.2 GB TinyLlama-shaped bf16 checkpoint once, to
// $PEFT_BENCH_TINYLLAMA or the temp folder, and measures loading it against a raw read (docs/PERFORMANCE.md);
// tinyllama-qlora (also only when named) trains LoRA on it over an NF4 base and a bf16 base (docs/QUANTIZATION.md).
using System.Diagnostics;
using System.Text.Json;
using Peft;
using Peft.Backbones.Bert;
using Peft.Backbones.Gpt2;
using Peft.Methods.Lora;
using Peft.Modeling;
using Peft.Tuners;
using TorchSharp;
using static TorchSharp.torch;

if (args is ["--child", "qlora-nf4" or "qlora-bf16"]) return TinyLlamaQLora.ChildMain(quantized: args[1] == "qlora-nf4");
if (args is ["--child", var child]) return TinyLlamaLoad.ChildMain(child);

var workloads = new Dictionary<string, Func<Dictionary<string, object>>>
{
    ["gpt2-lora"] = () => TrainStep(Gpt2Small, Lora(["c_attn"], 16, 32), batch: 2, length: 128, steps: 5, warm: 2),
    ["gpt2-full"] = () => TrainStep(Gpt2Small, null, batch: 2, length: 128, steps: 5, warm: 2),
    ["minilm-lora"] = () => TrainStep(MiniLmShaped, Lora(["query", "key", "value", "dense"], 8, 16), batch: 32, length: 48, steps: 8, warm: 2),
    ["minilm-full"] = () => TrainStep(MiniLmShaped, null, batch: 32, length: 48, steps: 8, warm: 2),
    ["gpt2-inference"] = Inference,
    ["tinyllama-load"] = TinyLlamaLoad.Run,
    ["tinyllama-qlora"] = TinyLlamaQLora.Run,
    ["multi-adapter"] = MultiAdapter.Run,
};
var selected = args.Length > 0 ? args : workloads.Keys.Where(k => !k.StartsWith("tinyllama", StringComparison.Ordinal)).ToArray();
torch.set_num_threads(Environment.ProcessorCount);
var results = new Dictionary<string, Dictionary<string, object>>();
foreach (var name in selected)
{
    if (!workloads.TryGetValue(name, out var run))
    {
        Console.Error.WriteLine($"unknown workload '{name}'; workloads: {string.Join(", ", workloads.Keys)}");
        return 2;
    }
    results[name] = run();
    Console.WriteLine(JsonSerializer.Serialize(new Dictionary<string, object>(results[name]) { ["workload"] = name }));
}
foreach (var (lora, full) in new[] { ("gpt2-lora", "gpt2-full"), ("minilm-lora", "minilm-full") })
{
    if (results.TryGetValue(lora, out var l) && results.TryGetValue(full, out var f))
    {
        Console.WriteLine($"{lora} / {full} step time: {(double)l["step_ms_median"] / (double)f["step_ms_median"]:F2}");
    }
}
return 0;

static PreTrainedModel Gpt2Small()
{
    var config = new Gpt2Config { ModelType = "gpt2", VocabSize = 50257, NEmbd = 768, NHead = 12, NLayer = 12, NPositions = 1024, AttnPdrop = 0, EmbdPdrop = 0, ResidPdrop = 0 };
    return new Gpt2Architecture().Build(config, TaskType.CausalLM);
}

static PreTrainedModel MiniLmShaped()
{
    var config = new BertConfig
    {
        ModelType = "bert", VocabSize = 30522, HiddenSize = 384, NumHiddenLayers = 6, NumAttentionHeads = 12, IntermediateSize = 1536,
        NumLabelsValue = 6, HiddenDropoutProb = 0, AttentionProbsDropoutProb = 0, PadTokenId = 0,
    };
    return new BertForSequenceClassification(config);
}

static LoraConfig Lora(string[] targets, int rank, double alpha) => new() { R = rank, LoraAlpha = alpha, TargetModules = TargetModules.FromNames(targets) };

static Dictionary<string, object> TrainStep(Func<PreTrainedModel> build, LoraConfig? lora, int batch, int length, int steps, int warm)
{
    torch.manual_seed(0);
    var setup = Stopwatch.StartNew();
    var model = build();
    nn.Module<ModelInputs, ModelOutputs> trained = lora is null ? model : PeftModels.Default.GetPeftModel(model, lora with { TaskType = model.Task });
    setup.Stop();
    trained.train();
    var parameters = trained.parameters().Where(p => p.requires_grad).ToList();
    using var optimizer = torch.optim.AdamW(parameters, lr: 1e-4);
    var vocab = model.Config.VocabSize;
    var ids = torch.randint(0, vocab, [batch, length]);
    var labels = model.Task == TaskType.CausalLM ? ids : torch.randint(0, model.Config.NumLabels, [batch]);
    var inputs = new ModelInputs { InputIds = ids, AttentionMask = torch.ones_like(ids), Labels = labels };
    var times = new List<double>();
    for (int i = 0; i < warm + steps; i++)
    {
        var clock = Stopwatch.StartNew();
        using (var scope = torch.NewDisposeScope())
        {
            var loss = trained.call(inputs).Loss!;
            loss.backward();
            optimizer.step();
            optimizer.zero_grad();
        }
        clock.Stop();
        if (i >= warm) times.Add(clock.Elapsed.TotalMilliseconds);
    }
    times.Sort();
    var median = times[times.Count / 2];
    return new()
    {
        ["step_ms_median"] = median,
        ["step_ms_min"] = times[0],
        ["tokens_per_s"] = batch * length / (median / 1000),
        ["trainable"] = parameters.Sum(p => p.numel()),
        ["all"] = trained.parameters().Sum(p => p.numel()),
        ["setup_s"] = setup.Elapsed.TotalSeconds,
    };
}

static Dictionary<string, object> Inference()
{
    torch.manual_seed(0);
    var model = Gpt2Small();
    model.eval();
    var prompt = torch.randint(0, 50257, [1, 128]);
    (double PrefillMs, double DecodeTokensPerSecond) Measure(nn.Module<ModelInputs, ModelOutputs> m)
    {
        using var noGrad = torch.no_grad();
        var prefill = new List<double>();
        for (int i = 0; i < 4; i++)
        {
            var clock = Stopwatch.StartNew();
            using (var scope = torch.NewDisposeScope()) m.call(new ModelInputs { InputIds = prompt });
            prefill.Add(clock.Elapsed.TotalMilliseconds);
        }
        prefill.Sort();
        var decode = Stopwatch.StartNew();
        using (var scope = torch.NewDisposeScope()) Generation.Greedy(m, model.Config, prompt[.., ..16], null, 32);
        return (prefill[1], 32 / decode.Elapsed.TotalSeconds);
    }
    var (basePrefill, baseDecode) = Measure(model);
    var peft = PeftModels.Default.GetPeftModel(model, Lora(["c_attn", "c_proj", "c_fc"], 16, 32) with { TaskType = TaskType.CausalLM });
    peft.eval();
    var (loraPrefill, loraDecode) = Measure(peft);
    var save = Stopwatch.StartNew();
    var directory = Path.Combine(Path.GetTempPath(), "peft-bench-adapter");
    peft.SavePretrained(directory);
    save.Stop();
    var bytes = new FileInfo(Path.Combine(directory, "adapter_model.safetensors")).Length;
    peft.Merge();
    var (mergedPrefill, mergedDecode) = Measure(peft);
    return new()
    {
        ["base_prefill_ms"] = basePrefill,
        ["base_decode_tok_s"] = baseDecode,
        ["lora_unmerged_prefill_ms"] = loraPrefill,
        ["lora_unmerged_decode_tok_s"] = loraDecode,
        ["lora_merged_prefill_ms"] = mergedPrefill,
        ["lora_merged_decode_tok_s"] = mergedDecode,
        ["adapter_save_s"] = save.Elapsed.TotalSeconds,
        ["adapter_bytes"] = bytes,
    };
}
