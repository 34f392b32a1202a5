// Issue 20, "BenchmarkDotNet for the small pieces": one LoRA Linear against the frozen Linear it wraps, with
// BenchmarkDotNet's statistics and [MemoryDiagnoser] (managed bytes per call), in this process:
//   dotnet run --project bench/Peft.Benchmarks -c Release -- --bdn [BenchmarkDotNet options, e.g. --filter *Forward*]
// The job is deliberately short (MicroBenchmarks.ShortJob: 1 launch, 2 warm-up and 5 measured iterations): enough for a
// ratio on a shared 2-core machine in a few minutes, not BenchmarkDotNet's default statistics. It runs in process (no
// generated project to build and no second native load of libtorch), so it inherits this process's settings:
// --threads N before --bdn sets libtorch's threads as for the console workloads.
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Jobs;
using BenchmarkDotNet.Running;
using BenchmarkDotNet.Toolchains.InProcess.Emit;
using Peft.Methods.Lora;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

internal static class MicroBenchmarks
{
    /// <summary>1 launch, 2 warm-up and 5 measured iterations, in process: short on purpose (see the file's header).</summary>
    public static Job ShortJob { get; } = Job.Default
        .WithLaunchCount(1).WithWarmupCount(2).WithIterationCount(5)
        .WithToolchain(InProcessEmitToolchain.Instance)
        .WithId("short-in-process");

    /// <summary>Runs the benchmarks BenchmarkDotNet's own <paramref name="arguments"/> select (all of them by default).</summary>
    public static int Run(string[] arguments)
    {
        var config = ManualConfig.CreateMinimumViable()
            .AddJob(ShortJob)
            .WithArtifactsPath(Path.Combine(Path.GetTempPath(), "peft-bdn"));
        var summaries = BenchmarkSwitcher.FromTypes([typeof(LoraLinearForward), typeof(LoraLinearStep)])
            .Run(arguments.Length > 0 ? arguments : ["--filter", "*"], config);
        return summaries.Any(s => s.HasCriticalValidationErrors || s.Reports.Any(r => !r.Success)) ? 1 : 0;
    }

    /// <summary>
    /// A frozen Linear and a LoRA Linear around it (Gaussian A, B drawn with std 0.02 so that the update is not zero),
    /// as <c>lora-linear</c> builds it too.
    /// </summary>
    internal static (LoraLayer Lora, Linear Frozen) Layers(int inFeatures, int outFeatures, int rank)
    {
        torch.manual_seed(0);
        var linear = nn.Linear(inFeatures, outFeatures);
        foreach (var p in linear.parameters()) p.requires_grad = false;
        var lora = new LoraLayer(linear, fanInFanOut: false);
        lora.AddAdapter("default", rank, scaling: 2.0, dropout: 0, loraBias: false, LoraInit.Gaussian);
        lora.ActiveAdapters = ["default"];
        using (torch.no_grad()) nn.init.normal_(lora.parameters().First(p => p.requires_grad && p.shape[1] == rank), std: 0.02);
        return (lora, linear);
    }
}

/// <summary>
/// One Linear forward without gradients (inference): the frozen Linear (the baseline), the LoRA Linear with the fused
/// update (the library's default) and with it off. MiniLM's query shape (32 × 48 tokens, 384 → 384, r 8) and a 4096²
/// Linear (r 16) over 256 tokens.
/// </summary>
[MemoryDiagnoser]
public class LoraLinearForward
{
    private LoraLayer lora = null!;
    private Linear frozen = null!;
    private Tensor x = null!;

    /// <summary>"minilm": 1536 tokens, 384 → 384, r 8; "4096": 256 tokens, 4096 → 4096, r 16.</summary>
    [Params("minilm", "4096")]
    public string Shape { get; set; } = "minilm";

    [GlobalSetup]
    public void Setup()
    {
        var (tokens, features, rank) = Shape == "minilm" ? (32 * 48, 384, 8) : (256, 4096, 16);
        (lora, frozen) = MicroBenchmarks.Layers(features, features, rank);
        lora.eval();
        frozen.eval();
        x = torch.randn(tokens, features);
    }

    [Benchmark(Baseline = true)]
    public void Frozen() => Forward(frozen);

    [Benchmark]
    public void LoraFused() => Forward(lora);

    [Benchmark]
    public void LoraUnfused() => Measure.Unfused(() => Forward(lora));

    private void Forward(nn.Module<Tensor, Tensor> layer)
    {
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        layer.call(x);
    }
}

/// <summary>
/// One Linear forward + backward (training; the input requires its gradient, as inside a model), MiniLM's query shape:
/// the frozen Linear (the baseline) against the LoRA Linear, fused update on and off.
/// </summary>
[MemoryDiagnoser]
public class LoraLinearStep
{
    private LoraLayer lora = null!;
    private Linear frozen = null!;
    private Tensor x = null!, outputGradient = null!;

    [GlobalSetup]
    public void Setup()
    {
        (lora, frozen) = MicroBenchmarks.Layers(384, 384, 8);
        lora.train();
        frozen.train();
        x = torch.randn(32 * 48, 384).requires_grad_();
        outputGradient = torch.randn(32 * 48, 384);
    }

    [Benchmark(Baseline = true)]
    public void Frozen() => Step(frozen);

    [Benchmark]
    public void LoraFused() => Step(lora);

    [Benchmark]
    public void LoraUnfused() => Measure.Unfused(() => Step(lora));

    private void Step(nn.Module<Tensor, Tensor> layer)
    {
        using var scope = torch.NewDisposeScope();
        layer.call(x).backward([outputGradient]);
        // Gradients accumulate across calls otherwise; zeroing in place keeps the same storage every call.
        x.grad!.zero_();
        foreach (var p in layer.parameters()) p.grad?.zero_();
    }
}
