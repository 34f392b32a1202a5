// CPU benchmarks of LoRA's own cost (issue 20) and of loading big checkpoints (issue 10). Every figure is a ratio of
// two things measured in the same run (interleaved rounds, medians), printed with the load average beside it, since
// this project's machine is shared.
//   dotnet run --project bench/Peft.Benchmarks -c Release [workload ...]
// Without arguments every workload but tinyllama-load runs (a few minutes on 2 cores); tinyllama-load (run only when
// named) writes a 2.2 GB TinyLlama-shaped bf16 checkpoint once, to $PEFT_BENCH_TINYLLAMA or the temp folder, and
// measures loading it against a raw read; tinyllama-qlora (also only when named) trains LoRA on it over an NF4 base and
// a bf16 base (docs/QUANTIZATION.md); tinyllama-step (only when named) times its LoRA train step at 1 × 256 on a
// float32, a bf16 and a checkpointed bf16 base, and its prefill unmerged and merged. `--bdn` runs the BenchmarkDotNet
// benchmarks of one LoRA Linear instead (MicroBenchmarks.cs). docs/PERFORMANCE.md shows the tables and how to read them.
using System.Globalization;
using System.Text.Json;
using TorchSharp;

if (args is ["--child", "train", var shape, var kind, .. var rest])
{
    return TrainSteps.Child(shape, kind, rest.FirstOrDefault() ?? "Auto", rest.Contains("checkpointing"));
}
if (args is ["--child", "tinyllama-step", var variant, var layers, var steps])
{
    return TinyLlamaStep.ChildMain(variant, int.Parse(layers, CultureInfo.InvariantCulture), int.Parse(steps, CultureInfo.InvariantCulture));
}
if (args is ["--child", "qlora-nf4" or "qlora-bf16"]) return TinyLlamaQLora.ChildMain(quantized: args[1] == "qlora-nf4");
if (args is ["--child", var child]) return TinyLlamaLoad.ChildMain(child);

var workloads = new Dictionary<string, Func<Dictionary<string, object>>>
{
    ["lora-linear"] = LinearFloor.Run,
    ["lora-ops-minilm"] = LoraOps.MiniLm,
    ["lora-ops-tinyllama"] = LoraOps.TinyLlama,
    ["gpt2-inference"] = () => InferenceRatios.Run("gpt2"),
    ["minilm-inference"] = () => InferenceRatios.Run("minilm"),
    ["gpt2-train"] = () => TrainSteps.Run("gpt2"),
    ["minilm-train"] = () => TrainSteps.Run("minilm"),
    ["adapter-io"] = AdapterIo.Run,
    ["gpt2-attention"] = () => TrainSteps.Attention("gpt2"),
    ["minilm-attention"] = () => TrainSteps.Attention("minilm"),
    ["bloom-attention"] = () => TrainSteps.Attention("bloom"),
    ["gpt2-checkpointing"] = () => TrainSteps.Checkpointing("gpt2"),
    ["minilm-checkpointing"] = () => TrainSteps.Checkpointing("minilm"),
    ["multi-adapter"] = MultiAdapter.Run,
    ["tinyllama-load"] = TinyLlamaLoad.Run,
    ["tinyllama-qlora"] = TinyLlamaQLora.Run,
    ["minilm-quantized-linear"] = MiniLmQuantizedLinear.Run,
    ["tinyllama-step"] = TinyLlamaStep.Run,
};
// --threads N: libtorch's intra-op threads (default: one per processor). On a machine loaded by other work, one
// thread measures more steadily (OpenMP's threads wait for each other when a core is taken).
var threadCount = Environment.ProcessorCount;
if (args is ["--threads", var count, ..])
{
    threadCount = int.Parse(count, CultureInfo.InvariantCulture);
    args = args[2..];
}
// --bdn [BenchmarkDotNet options]: the small pieces under BenchmarkDotNet instead (MicroBenchmarks.cs).
if (args is ["--bdn", .. var benchmarkArguments])
{
    torch.set_num_threads(threadCount);
    return MicroBenchmarks.Run(benchmarkArguments);
}
// --layers N, --steps N (anywhere): tinyllama-step's model depth (default 22, TinyLlama's) and timed steps (default 3).
args = TinyLlamaStep.TakeOptions(args);
var selected = args.Length > 0 ? args : workloads.Keys.Where(k => !k.Contains("tinyllama", StringComparison.Ordinal)).ToArray();
var unknown = selected.Where(s => !workloads.ContainsKey(s)).ToList();
if (unknown.Count > 0)
{
    Console.Error.WriteLine($"unknown workload '{string.Join("', '", unknown)}'; workloads: {string.Join(", ", workloads.Keys)}");
    return 2;
}
// Stated so that the runs do not depend on libtorch's default; the 1-thread figures in gpt2-inference and
// minilm-inference measure the alternative in the same run. Children (train steps) inherit the count.
torch.set_num_threads(threadCount);
Environment.SetEnvironmentVariable("PEFT_BENCH_THREADS", threadCount.ToString(CultureInfo.InvariantCulture));
Console.WriteLine($"threads {torch.get_num_threads()}, processors {Environment.ProcessorCount}");
foreach (var name in selected)
{
    var loadBefore = Measure.LoadAverage();
    var result = workloads[name]();
    result["load_average_before"] = loadBefore;
    result["load_average_after"] = Measure.LoadAverage();
    Console.WriteLine(JsonSerializer.Serialize(new Dictionary<string, object>(result) { ["workload"] = name }));
    foreach (var (key, value) in result.Where(kv => kv.Key.Contains("_over_", StringComparison.Ordinal)))
    {
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  {name,-17} {key,-45} {(double)value,6:F2}"));
    }
}
return 0;
