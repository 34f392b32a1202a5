using Peft.Checkpoints;
using Peft.Conformance;
using Peft.Methods.Lora;
using Peft.Modeling;
using Peft.Tests.Checkpoints;
using TorchSharp;
using static TorchSharp.torch;

namespace Peft.Tests.Conformance;

/// <summary>The conformance runner's <c>--float64</c> mode and the classification of the gaps it reports.</summary>
public class Float64ModeTests
{
    private const string CaseName = "gpt2-clm-exact";

    [Fact]
    public void ReportGivesTheThreeDistancesAndClassifiesThem()
    {
        var reference = torch.tensor(new[] { 1.0, -2.0, 0.5 });
        var ours64 = torch.tensor(new[] { 1.0, -2.0, 0.5 + 3e-4 });    // misses the reference by 3e-4
        var near32 = torch.tensor(new[] { 1.0, -2.0 + 2e-4, 0.5 + 3e-4 });   // float32 spread 2e-4 on its own
        var far32 = torch.tensor(new[] { 1.0, -2.0, 0.5 + 3e-4 + 1e-6 });    // float32 spread 1e-6 only
        var tolerance = new Tolerance(1e-6, 1e-5);                     // bound 1e-6 + 1e-5 · 2 = 2.1e-5

        var rounding = PrecisionReport.Of(Compare("x", tolerance, ours64, reference), Compare("x", tolerance, near32, reference));
        Assert.Equal(2.1e-5, rounding.Bound, 12);
        Assert.Equal(3e-4, rounding.Ours64, 9);
        Assert.Equal(3e-4, rounding.Ours32, 9);
        Assert.Equal(2e-4, rounding.Spread, 9);
        Assert.Equal(Cause.Rounding, rounding.Cause);       // 3e-4 ≤ 2 · 2e-4

        var ours = PrecisionReport.Of(Compare("x", tolerance, ours64, reference), Compare("x", tolerance, far32, reference));
        Assert.Equal(1e-6, ours.Spread, 9);
        Assert.Equal(Cause.Ours, ours.Cause);               // 3e-4 ≫ 2 · 1e-6
        Assert.Contains("|ours32−ref| 3.01E-004, |ours64−ref| 3.00E-004, |ours32−ours64| 1.00E-006", ours.ToString());

        var float32Only = PrecisionReport.Of(Compare("x", tolerance, reference, reference), Compare("x", tolerance, near32, reference));
        Assert.Equal(Cause.OurFloat32, float32Only.Cause);  // float64 exact, float32 off by 3e-4

        var fine = PrecisionReport.Of(Compare("x", tolerance, reference, reference), Compare("x", tolerance, reference, reference));
        Assert.Null(fine.Cause);
    }

    /// <summary>
    /// Auto picks the explicit attention for float32 on the CPU and the fused kernel for float64: the float64 run pins the
    /// float32 run's choice, so that the two differ in precision only; an explicit choice is kept.
    /// </summary>
    [Fact]
    public void Float64RunUsesTheFloat32RunsAttentionPath()
    {
        using var scope = torch.NewDisposeScope();
        var (_, config) = PeftModels.Default.ReadConfig(Fixtures.Path("models", "gpt2-clm"));
        Assert.Equal(AttentionImplementation.Auto, config.AttnImplementation);
        Assert.False(FusedAttention.Use(config.AttnImplementation, torch.zeros(1, 1, 2, 4)));
        Assert.True(FusedAttention.Use(config.AttnImplementation, torch.zeros(1, 1, 2, 4, ScalarType.Float64)));

        var pinned = ConformanceRunner.WithFloat32Attention(config).AttnImplementation;
        Assert.Equal(FusedAttention.Use(config.AttnImplementation, torch.zeros(1, 1, 2, 4)), FusedAttention.Use(pinned, torch.zeros(1, 1, 2, 4, ScalarType.Float64)));
        Assert.Equal(AttentionImplementation.Sdpa, ConformanceRunner.WithFloat32Attention(config with { AttnImplementation = AttentionImplementation.Sdpa }).AttnImplementation);
    }

    [Fact]
    public void Float64RunPassesATinyCaseAndReportsAGapAsOurs()
    {
        using var scratch = new ScratchDirectory();
        WriteTinyCase(scratch.Path);

        Assert.Equal(Outcome.Pass, new ConformanceRunner(scratch.Path, float64: true).Run(CaseName).Outcome);
        Assert.Equal(Outcome.Pass, new ConformanceRunner(scratch.Path).Run(CaseName).Outcome);

        // A gradient the "reference" has 1 % off: beyond anything float32 rounding does, so the float64 run calls it ours.
        var ioPath = Path.Combine(scratch.Path, "cases", CaseName, "io.safetensors");
        var io = SafeTensors.Load(ioPath);
        var key = io.Keys.First(k => k.StartsWith("grad.", StringComparison.Ordinal));
        io[key] = io[key] * 1.01f;
        SafeTensors.Save(ioPath, io);

        var result = new ConformanceRunner(scratch.Path, float64: true).Run(CaseName);
        Assert.Equal(Outcome.Fail, result.Outcome);
        Assert.Contains($"grad {key["grad.".Length..]}: |ours32−ref|", result.Detail);
        Assert.Contains("ours: the gap stays in float64", result.Detail);
    }

    /// <summary>The fixtures' tiny GPT-2 with a LoRA moved off its initial values, its oracle our own float64 run.</summary>
    private static void WriteTinyCase(string root)
    {
        var source = Fixtures.Path("models", "gpt2-clm");
        var model = Path.Combine(root, "models", "gpt2-clm");
        Directory.CreateDirectory(model);
        foreach (var file in new[] { "config.json", "model.safetensors" }) File.Copy(Path.Combine(source, file), Path.Combine(model, file));

        torch.manual_seed(3);
        var peft = PeftModels.Default.GetPeftModel(PeftModels.Default.LoadPretrained(model, TaskType.CausalLM),
            new LoraConfig { R = 2, LoraAlpha = 4, TaskType = TaskType.CausalLM });
        using (torch.no_grad())
        {
            foreach (var (_, parameter) in peft.TrainableParameters()) parameter.add_(torch.randn_like(parameter) * 0.2);
        }
        var ids = torch.tensor(new long[] { 5, 17, 99, 3, 42, 8, 61, 0 }, [1, 8]);
        var mask = torch.tensor(new long[] { 1, 1, 1, 1, 1, 1, 0, 0 }, [1, 8]);
        var inputs = new ModelInputs { InputIds = ids, AttentionMask = mask, Labels = ids.masked_fill(mask.eq(0), Losses.IgnoreIndex) };
        new ExactCaseWriter().Write(root, "gpt2-clm", CaseName, peft, inputs);
    }

    private static Comparison Compare(string what, Tolerance tolerance, Tensor ours, Tensor reference)
    {
        var log = new CheckLog(keepGoing: true);
        log.Compare(what, tolerance, ours, reference);
        return log.Comparisons[0];
    }
}
