using Peft.Methods.Lora;
using Peft.Modeling;
using Peft.Tests.Checkpoints;
using Peft.Tests.PromptLearning;
using TorchSharp;
using static TorchSharp.torch;

namespace Peft.Tests.Methods;

/// <summary>
/// PeftModel.AddWeightedAdapter (the reference's add_weighted_adapter): the factors each combination type must
/// produce, computed by hand here, on GPT-2's Conv1D (fan_in_fan_out) and embedding layers.
/// </summary>
public class WeightedAdapterTests
{
    private const string Attention = "transformer.h.0.attn.c_attn";
    private const string Embedding = "transformer.wte";

    [Fact]
    public void LinearScalesAByTheSignedRootAndBByTheRootOfWeightTimesScaling()
    {
        using var scope = torch.NewDisposeScope();
        var peft = TwoAdapters(rankX: 2, rankY: 2);
        peft.AddWeightedAdapter(["x", "y"], [0.7, -1.5], "mix", new WeightedAdapterOptions { CombinationType = CombinationType.Linear });

        // scaling: x alpha 4 / r 2 = 2, y alpha 3 / r 2 = 1.5
        var (sx, sy) = (Math.Sqrt(0.7 * 2), Math.Sqrt(1.5 * 1.5));
        TinyModels.AssertClose(sx * A(peft, Attention, "x") - sy * A(peft, Attention, "y"), A(peft, Attention, "mix"), 1e-6);
        TinyModels.AssertClose(sx * B(peft, Attention, "x") + sy * B(peft, Attention, "y"), B(peft, Attention, "mix"), 1e-6);
        TinyModels.AssertClose(sx * A(peft, Embedding, "x") - sy * A(peft, Embedding, "y"), A(peft, Embedding, "mix"), 1e-6);
        var config = (LoraConfig)peft.Adapters["mix"].Config;
        Assert.Equal(2, config.R);
        Assert.Equal(2, config.LoraAlpha);   // scaling 1: the sources' scalings are in the factors
        Assert.DoesNotContain(peft.TrainableParameters(), p => p.Name.Contains(".mix", StringComparison.Ordinal));
    }

    [Fact]
    public void OneAdapterWithWeightOneComesBackAsItselfWhateverTheTypeAsked()
    {
        using var scope = torch.NewDisposeScope();
        var peft = TwoAdapters(rankX: 2, rankY: 2);
        peft.AddWeightedAdapter(["x"], [1.0], "copy");   // svd asked, linear runs (one adapter)
        TinyModels.AssertClose(Delta(peft, Attention, "x"), Delta(peft, Attention, "copy"), 1e-6);
        TinyModels.AssertClose(Delta(peft, Embedding, "x"), Delta(peft, Embedding, "copy"), 1e-6);

        var ids = TinyModels.Ids([3, 5, 7, 2]);
        peft.SetAdapter("x");
        var fromX = peft.call(new ModelInputs { InputIds = ids }).Logits;
        peft.SetAdapter("copy");
        TinyModels.AssertClose(fromX, peft.call(new ModelInputs { InputIds = ids }).Logits, 1e-5);
    }

    [Fact]
    public void CatStacksTheRanksAndIsExact()
    {
        using var scope = torch.NewDisposeScope();
        var peft = TwoAdapters(rankX: 2, rankY: 3);
        peft.AddWeightedAdapter(["x", "y"], [0.5, 2.0], "cat", new WeightedAdapterOptions { CombinationType = CombinationType.Cat });

        Assert.Equal(5, ((LoraConfig)peft.Adapters["cat"].Config).R);
        var a = A(peft, Attention, "cat");
        TinyModels.AssertClose(0.5 * 2 * A(peft, Attention, "x"), a[..2], 1e-6);
        TinyModels.AssertClose(2.0 * 1 * A(peft, Attention, "y"), a[2..], 1e-6);   // y: alpha 3 / r 3
        TinyModels.AssertClose(B(peft, Attention, "y"), B(peft, Attention, "cat")[.., 2..], 1e-6);
        var expected = 0.5 * Delta(peft, Attention, "x") + 2.0 * Delta(peft, Attention, "y");
        TinyModels.AssertClose(expected, Delta(peft, Attention, "cat"), 1e-5);
    }

    [Fact]
    public void SvdOfFullRankIsExactAndTruncatedIsTheBestApproximationOfThatRank()
    {
        using var scope = torch.NewDisposeScope();
        var peft = TwoAdapters(rankX: 2, rankY: 2);
        peft.AddWeightedAdapter(["x", "y"], [1.0, -0.5], "full", new WeightedAdapterOptions { SvdRank = 4 });
        peft.AddWeightedAdapter(["x", "y"], [1.0, -0.5], "low", new WeightedAdapterOptions { SvdRank = 1 });

        foreach (var layer in new[] { Attention, Embedding })
        {
            var target = Delta(peft, layer, "x") - 0.5 * Delta(peft, layer, "y");
            TinyModels.AssertClose(target, Delta(peft, layer, "full"), 1e-5);
            // Eckart–Young: the rank-1 error is the norm of the singular values left out.
            var singular = torch.linalg.svdvals(target.to(ScalarType.Float64));
            var expectedError = singular[1..].pow(2).sum().sqrt().item<double>();
            var error = (target - Delta(peft, layer, "low")).to(ScalarType.Float64).pow(2).sum().sqrt().item<double>();
            Assert.Equal(expectedError, error, 4);
        }
        Assert.Equal(1, ((LoraConfig)peft.Adapters["low"].Config).R);
    }

    [Fact]
    public void SvdClampLimitsTheFactorsToTheQuantile()
    {
        using var scope = torch.NewDisposeScope();
        var peft = TwoAdapters(rankX: 2, rankY: 2);
        peft.AddWeightedAdapter(["x", "y"], [1.0, 1.0], "clamped", new WeightedAdapterOptions { SvdClamp = 0.5 });
        peft.AddWeightedAdapter(["x", "y"], [1.0, 1.0], "free");
        var free = torch.cat([B(peft, Attention, "free").flatten(), A(peft, Attention, "free").flatten()]);
        var high = torch.quantile(free, torch.tensor(0.5f)).item<float>();
        TinyModels.AssertClose(B(peft, Attention, "free").clamp(-high, high), B(peft, Attention, "clamped"), 1e-6);
        TinyModels.AssertClose(A(peft, Attention, "free").clamp(-high, high), A(peft, Attention, "clamped"), 1e-6);
    }

    [Fact]
    public void TiesKeepsTheLargestValuesAndAveragesThoseWithTheElectedSign()
    {
        using var scope = torch.NewDisposeScope();
        var t1 = torch.tensor(new float[] { 1, -2, 3, 0.5f });
        var t2 = torch.tensor(new float[] { -1, -1, 2, 4 });
        // density 0.5 keeps two values each: t1 → [0, −2, 3, 0], t2 → [0, 0, 2, 4]; sums [0, −2, 5, 4] elect [+, −, +, +].
        var merged = TaskArithmetic.Ties([t1, t2], [1.0, 1.0], 0.5, MajoritySignMethod.Total);
        TinyModels.AssertClose(torch.tensor(new float[] { 0, -2, 2.5f, 4 }), merged, 1e-6);

        // One large positive value against two small negative ones: the total elects +, the frequency −.
        var big = torch.tensor(new float[] { 5 });
        var small = torch.tensor(new float[] { -1 });
        TinyModels.AssertClose(torch.tensor(new float[] { 10 }), TaskArithmetic.Ties([big, small, small], [2.0, 1.0, 1.0], 1.0, MajoritySignMethod.Total), 1e-6);
        TinyModels.AssertClose(torch.tensor(new float[] { -1 }), TaskArithmetic.Ties([big, small, small], [2.0, 1.0, 1.0], 1.0, MajoritySignMethod.Frequency), 1e-6);
    }

    [Fact]
    public void MagnitudePruneSumsTheLargestValuesOfEachTask()
    {
        using var scope = torch.NewDisposeScope();
        var t1 = torch.tensor(new float[] { 1, -2, 3, 0.5f });
        var t2 = torch.tensor(new float[] { -1, -1, 2, 4 });
        var merged = TaskArithmetic.MagnitudePrune([t1, t2], [2.0, -1.0], 0.5);
        TinyModels.AssertClose(torch.tensor(new float[] { 0, -4, 6 - 2, -4 }), merged, 1e-6);
        TinyModels.AssertClose(torch.zeros(4), TaskArithmetic.MagnitudePrune([t1], [1.0], 0.0), 0);
    }

    [Fact]
    public void DareKeepsAboutTheDensityAndRescalesWhatItKeeps()
    {
        using var scope = torch.NewDisposeScope();
        torch.manual_seed(11);
        var task = torch.rand(20_000) + 0.5f;
        torch.manual_seed(12);
        var merged = TaskArithmetic.DareLinear([task], [3.0], 0.25);
        var kept = merged.ne(0);
        Assert.InRange(kept.to(ScalarType.Float32).mean().item<float>(), 0.23f, 0.27f);
        TinyModels.AssertClose(task.masked_select(kept) * 3.0 / 0.25, merged.masked_select(kept), 1e-4);
        // DARE-TIES prunes the same way, then elects signs: one positive task keeps its rescaled values.
        torch.manual_seed(12);
        TinyModels.AssertClose(merged, TaskArithmetic.DareTies([task], [3.0], 0.25, MajoritySignMethod.Total), 1e-4);
    }

    [Theory]
    [InlineData(CombinationType.Ties)]
    [InlineData(CombinationType.DareLinear)]
    [InlineData(CombinationType.DareTies)]
    [InlineData(CombinationType.MagnitudePrune)]
    public void PruningKindsWithDensityOneAreTheLinearCombination(CombinationType kind)
    {
        using var scope = torch.NewDisposeScope();
        var peft = TwoAdapters(rankX: 2, rankY: 2);
        peft.AddWeightedAdapter(["x", "y"], [0.6, 0.9], "plain", new WeightedAdapterOptions { CombinationType = CombinationType.Linear });
        peft.AddWeightedAdapter(["x", "y"], [0.6, 0.9], "pruned", new WeightedAdapterOptions { CombinationType = kind, Density = 1.0 });
        if (kind is CombinationType.Ties or CombinationType.DareTies)
        {
            // With nothing pruned TIES still averages the values of the elected sign instead of summing them.
            var stackedA = torch.stack([Math.Sqrt(0.6 * 2) * A(peft, Attention, "x"), Math.Sqrt(0.9 * 1.5) * A(peft, Attention, "y")]);
            var mask = TaskArithmetic.MajoritySignMask(torch.stack([A(peft, Attention, "x"), A(peft, Attention, "y")]), MajoritySignMethod.Total);
            var expected = (stackedA * mask).sum(dim: 0) / mask.sum(dim: 0).clamp_min(1);
            TinyModels.AssertClose(expected, A(peft, Attention, "pruned"), 1e-6);
            return;
        }
        TinyModels.AssertClose(A(peft, Attention, "plain"), A(peft, Attention, "pruned"), 1e-6);
        TinyModels.AssertClose(B(peft, Attention, "plain"), B(peft, Attention, "pruned"), 1e-6);
    }

    [Fact]
    public void SvdKindsPruneTheDeltasBeforeFactorising()
    {
        using var scope = torch.NewDisposeScope();
        var peft = TwoAdapters(rankX: 2, rankY: 2);
        peft.AddWeightedAdapter(["x", "y"], [1.0, 1.0], "mp", new WeightedAdapterOptions { CombinationType = CombinationType.MagnitudePruneSvd, Density = 0.5, SvdRank = 8 });
        var expected = TaskArithmetic.PruneByMagnitude(Delta(peft, Attention, "x"), 0.5) + TaskArithmetic.PruneByMagnitude(Delta(peft, Attention, "y"), 0.5);
        TinyModels.AssertClose(expected, Delta(peft, Attention, "mp"), 1e-5);
    }

    [Fact]
    public void TheWeightedAdapterSavesAndLoadsLikeAnyOther()
    {
        using var scope = torch.NewDisposeScope();
        var directory = Directory.CreateTempSubdirectory("peft-weighted-").FullName;
        try
        {
            var peft = TwoAdapters(rankX: 2, rankY: 2);
            peft.AddWeightedAdapter(["x", "y"], [0.5, 0.5], "mix");
            peft.SetAdapter("mix");
            var ids = TinyModels.Ids([3, 5, 7, 2]);
            var expected = peft.call(new ModelInputs { InputIds = ids }).Logits;
            peft.SavePretrained(directory, ["mix"]);

            var loaded = PeftModels.Default.FromPretrained(TinyModels.Gpt2(TaskType.CausalLM), Path.Combine(directory, "mix"));
            TinyModels.AssertClose(expected, loaded.call(new ModelInputs { InputIds = ids }).Logits, 1e-6);
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }

    [Fact]
    public void ConvolutionKernelsCombineAsFlattenedMatrices()
    {
        using var scope = torch.NewDisposeScope();
        torch.manual_seed(5);
        const string projection = "vit.embeddings.patch_embeddings.projection";
        var model = PeftModels.Default.LoadPretrained(Fixtures.Path("models", "vit-imgcls"), TaskType.ImageClassification);
        var config = new LoraConfig { R = 2, LoraAlpha = 4, TargetModules = new[] { "projection" }, InitLoraWeights = LoraInitWeights.Random };
        var peft = TinyModels.Peft(model, config);
        peft.AddAdapter("x", config);
        peft.AddAdapter("y", config with { R = 3, LoraAlpha = 3 });
        peft.AddWeightedAdapter(["x", "y"], [1.0, -0.25], "svd", new WeightedAdapterOptions { SvdRank = 5 });
        peft.AddWeightedAdapter(["x", "y"], [1.0, -0.25], "cat", new WeightedAdapterOptions { CombinationType = CombinationType.Cat });

        var expected = Delta(peft, projection, "x") - 0.25 * Delta(peft, projection, "y");
        TinyModels.AssertClose(expected, Delta(peft, projection, "svd"), 1e-5);
        TinyModels.AssertClose(expected, Delta(peft, projection, "cat"), 1e-5);
        Assert.Equal(A(peft, projection, "x").shape[1..], A(peft, projection, "svd").shape[1..]);   // (r, in, kh, kw)
    }

    [Fact]
    public void OptionsThatCannotApplyAreRefusedNotIgnored()
    {
        using var scope = torch.NewDisposeScope();
        var peft = TwoAdapters(rankX: 2, rankY: 3);
        Assert.Contains("density", Assert.Throws<PeftConfigException>(() =>
            peft.AddWeightedAdapter(["x", "y"], [1, 1], "t", new WeightedAdapterOptions { CombinationType = CombinationType.TiesSvd })).Message);
        Assert.Contains("density", Assert.Throws<PeftConfigException>(() =>
            peft.AddWeightedAdapter(["x", "y"], [1, 1], "t", new WeightedAdapterOptions { CombinationType = CombinationType.Cat, Density = 0.5 })).Message);
        Assert.Contains("svd_rank", Assert.Throws<PeftConfigException>(() =>
            peft.AddWeightedAdapter(["x"], [1], "t", new WeightedAdapterOptions { SvdRank = 2 })).Message);
        Assert.Contains("majority_sign_method", Assert.Throws<PeftConfigException>(() =>
            peft.AddWeightedAdapter(["x", "y"], [1, 1], "t", new WeightedAdapterOptions { MajoritySignMethod = MajoritySignMethod.Frequency })).Message);
        Assert.Contains("one rank", Assert.Throws<PeftConfigException>(() =>
            peft.AddWeightedAdapter(["x", "y"], [1, 1], "t", new WeightedAdapterOptions { CombinationType = CombinationType.Linear })).Message);
        Assert.Throws<ArgumentException>(() => peft.AddWeightedAdapter(["x", "nope"], [1, 1], "t"));
        Assert.Throws<ArgumentException>(() => peft.AddWeightedAdapter(["x", "y"], [1], "t"));
        Assert.Throws<ArgumentException>(() => peft.AddWeightedAdapter(["x", "y"], [1, 1], "y"));
        Assert.False(peft.Adapters.ContainsKey("t"));   // nothing half-built is left behind
    }

    [Fact]
    public void DoraAdaptersAreRefused()
    {
        using var scope = torch.NewDisposeScope();
        var peft = TinyModels.Peft(TinyModels.Gpt2(TaskType.CausalLM), new LoraConfig { R = 2, TargetModules = new[] { "c_attn" }, UseDora = true });
        Assert.Contains("DoRA", Assert.Throws<PeftConfigException>(() => peft.AddWeightedAdapter(["default"], [1], "copy")).Message);
    }

    /// <summary>GPT-2 with LoRA adapters x (alpha 4) and y (alpha = its rank) on c_attn and wte, randomly initialised.</summary>
    private static PeftModel TwoAdapters(int rankX, int rankY)
    {
        torch.manual_seed(7);
        var peft = TinyModels.Peft(TinyModels.Gpt2(TaskType.CausalLM), Config(rankX, alpha: 4));
        peft.AddAdapter("x", Config(rankX, alpha: 4));
        peft.AddAdapter("y", Config(rankY, alpha: rankY == 2 ? 3 : rankY));
        return peft;
    }

    private static LoraConfig Config(int rank, double alpha) => new()
    {
        R = rank,
        LoraAlpha = alpha,
        TargetModules = new[] { "c_attn", "wte" },
        InitLoraWeights = LoraInitWeights.Random,
    };

    private static Tensor A(PeftModel peft, string layer, string adapter) => Factor(peft, layer, adapter, "A");

    private static Tensor B(PeftModel peft, string layer, string adapter) => Factor(peft, layer, adapter, "B");

    private static Tensor Factor(PeftModel peft, string layer, string adapter, string which)
    {
        var names = new[] { $"{layer}.lora_{which}.{adapter}.weight", $"{layer}.lora_embedding_{which}.{adapter}" };
        return peft.named_parameters().Single(p => names.Any(n => p.name.EndsWith(n, StringComparison.Ordinal))).parameter.detach();
    }

    /// <summary>scaling · B·A as the (out, in), (dim, vocab) or (out, in·kh·kw) matrix.</summary>
    private static Tensor Delta(PeftModel peft, string layer, string adapter)
    {
        var config = (LoraConfig)peft.Adapters[adapter].Config;
        return B(peft, layer, adapter).flatten(1).mm(A(peft, layer, adapter).flatten(1)) * config.ScalingFor(layer);
    }
}
