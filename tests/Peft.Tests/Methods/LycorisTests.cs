using System.Text.Json;
using Peft.Methods.LoHa;
using Peft.Methods.LoKr;
using Peft.Modeling;
using Peft.Tuners;
using TorchSharp;
using static TorchSharp.torch;

namespace Peft.Tests.Methods;

/// <summary>LoHa and LoKr (the LyCORIS methods): shapes, merging, saving, dropouts and config validation.</summary>
public class LycorisTests
{
    private static readonly TargetModules QV = TargetModules.FromNames(["q_proj", "v_proj"]);

    [Fact]
    public void LoHaMergesSavesAndReloads()
    {
        var config = new LoHaConfig { TaskType = TaskType.CausalLM, TargetModules = QV, R = 3, Alpha = 6, InitWeights = false };
        TunerContract.MergeMatchesUnmerged("llama-clm", config);
        var keys = TunerContract.SavedAdapterReloads("llama-clm", config);
        Assert.Equal(2 * 2 * 4, keys.Count);
        Assert.Contains("base_model.model.model.layers.1.self_attn.v_proj.hada_w2_b", keys);
    }

    [Fact]
    public void LoHaFactorsHaveTheReferenceShapesAndStartAsTheIdentity()
    {
        using var scope = torch.NewDisposeScope();
        var config = new LoHaConfig { TaskType = TaskType.CausalLM, TargetModules = QV, R = 3 };
        var peft = TunerContract.Attach("llama-clm", config, out var inputs, out var baseLogits);
        var shapes = peft.TrainableParameters().ToDictionary(p => p.Name, p => p.Parameter.shape);
        const string v = "base_model.model.model.layers.0.self_attn.v_proj.";
        Assert.Equal([16L, 3], shapes[v + "hada_w1_a.default"]); // (out, r)
        Assert.Equal([3L, 32], shapes[v + "hada_w1_b.default"]); // (r, in)
        Assert.Equal([16L, 3], shapes[v + "hada_w2_a.default"]);
        Assert.Equal([3L, 32], shapes[v + "hada_w2_b.default"]);
        peft.eval();
        TunerContract.AssertClose(baseLogits, peft.call(inputs).Logits, 1e-6);
    }

    [Fact]
    public void LoKrMergesSavesAndReloads()
    {
        var config = new LoKrConfig { TaskType = TaskType.CausalLM, TargetModules = QV, R = 1, Alpha = 5, DecomposeBoth = true, InitWeights = LoKrInit.Random };
        TunerContract.MergeMatchesUnmerged("llama-clm", config);
        var keys = TunerContract.SavedAdapterReloads("llama-clm", config);
        Assert.Contains("base_model.model.model.layers.0.self_attn.q_proj.lokr_w1_a", keys);
        Assert.Contains("base_model.model.model.layers.0.self_attn.q_proj.lokr_w2_b", keys);
        Assert.DoesNotContain("base_model.model.model.layers.0.self_attn.q_proj.lokr_w1", keys);
    }

    [Theory]
    [InlineData(256, -1, 16, 16)]
    [InlineData(128, -1, 8, 16)]
    [InlineData(127, -1, 1, 127)]
    [InlineData(128, 4, 4, 32)]
    [InlineData(32, -1, 4, 8)]
    [InlineData(16, -1, 4, 4)]
    [InlineData(96, 3, 3, 32)]
    [InlineData(96, 5, 4, 24)]   // 5 does not divide 96: the closest split whose smaller side is at most 5
    public void FactorizationFollowsTheReference(long dimension, int factor, long m, long n) =>
        Assert.Equal((m, n), LoKrLayer.Factorize(dimension, factor));

    [Theory]
    [InlineData(false, 4, "lokr_w1", "lokr_w2")]       // r ≥ max(b, d)/2: whole factors
    [InlineData(false, 1, "lokr_w1", "lokr_w2_a")]     // a small r splits w2 only
    [InlineData(true, 1, "lokr_w1_a", "lokr_w2_a")]    // decompose_both splits w1 too
    public void LoKrSplitsFactorsAsTheReferenceDoes(bool decomposeBoth, int rank, string left, string right)
    {
        using var scope = torch.NewDisposeScope();
        var layer = new LoKrLayer(nn.Linear(32, 32, hasBias: false));
        layer.AddAdapter("default", rank, 8, new LoKrConfig { DecomposeBoth = decomposeBoth });
        var names = layer.named_parameters().Select(p => p.name).Where(n => n.StartsWith("lokr_", StringComparison.Ordinal)).ToList();
        Assert.Contains(left + ".default", names);
        Assert.Contains(right + ".default", names);
        // 32 = 4 · 8 on both sides: w1 (4, 4), w2 (8, 8), or their factors of rank r.
        var shapes = layer.named_parameters().ToDictionary(p => p.name, p => p.parameter.shape);
        if (left == "lokr_w1") Assert.Equal([4L, 4], shapes["lokr_w1.default"]);
        else Assert.Equal(new long[] { 4, rank }, shapes["lokr_w1_a.default"]);
        if (right == "lokr_w2") Assert.Equal([8L, 8], shapes["lokr_w2.default"]);
        else Assert.Equal(new long[] { rank, 8 }, shapes["lokr_w2_b.default"]);
    }

    [Theory]
    [InlineData(LoKrInit.Default)]
    [InlineData(LoKrInit.Lycoris)]
    public void LoKrInitialisationsStartAsTheIdentity(LoKrInit init)
    {
        using var scope = torch.NewDisposeScope();
        var config = new LoKrConfig { TaskType = TaskType.CausalLM, TargetModules = QV, R = 1, DecomposeBoth = true, InitWeights = init };
        var peft = TunerContract.Attach("llama-clm", config, out var inputs, out var baseLogits);
        peft.eval();
        TunerContract.AssertClose(baseLogits, peft.call(inputs).Logits, 1e-6);
    }

    [Fact]
    public void LoKrInitWeightsReadsAndWritesTheReferenceJson()
    {
        foreach (var (json, expected) in new[] { ("true", LoKrInit.Default), ("false", LoKrInit.Random), ("\"lycoris\"", LoKrInit.Lycoris) })
        {
            var config = (LoKrConfig)Parse($$"""{"peft_type": "LOKR", "init_weights": {{json}}}""");
            Assert.Equal(expected, config.InitWeights);
            using var written = JsonDocument.Parse(PeftJson.Serialize(config));
            Assert.Equal(json, written.RootElement.GetProperty("init_weights").GetRawText());
        }
        var error = Assert.Throws<PeftConfigException>(() => Parse("""{"peft_type": "LOKR", "init_weights": "gaussian"}"""));
        Assert.Contains("init_weights", error.Message);
    }

    [Fact]
    public void RankDropoutZeroesWholeOutputRowsOfTheUpdate()
    {
        using var scope = torch.NewDisposeScope();
        torch.manual_seed(5);
        var layer = new LoKrLayer(nn.Linear(8, 12, hasBias: false));
        layer.AddAdapter("default", 4, 4, new LoKrConfig { RankDropout = 0.5, InitWeights = LoKrInit.Random });
        layer.ActiveAdapters = ["default"];
        var x = torch.randn(5, 8);
        var baseOut = layer.BaseLayer.call(x);
        layer.eval();
        var full = layer.call(x);
        layer.train();
        var dropped = layer.call(x);
        // Each output feature is either the base's (its row dropped) or the full update's (kept, unscaled).
        var isBase = (dropped - baseOut).abs().max(0).values.le(1e-6);
        var isFull = (dropped - full).abs().max(0).values.le(1e-6);
        Assert.True(isBase.logical_or(isFull).all().item<bool>());
        Assert.True(isBase.any().item<bool>() && isFull.any().item<bool>(), "p = 0.5 over 12 rows should drop some and keep some");
    }

    [Fact]
    public void ModuleDropoutOfOneSkipsTheAdapterOnlyInTraining()
    {
        using var scope = torch.NewDisposeScope();
        var config = new LoHaConfig { TaskType = TaskType.CausalLM, TargetModules = QV, InitWeights = false, ModuleDropout = 1 };
        var peft = TunerContract.Attach("llama-clm", config, out var inputs, out var baseLogits);
        peft.train();
        TunerContract.AssertClose(baseLogits, peft.call(inputs).Logits, 1e-6);
        peft.eval();
        Assert.True((peft.call(inputs).Logits - baseLogits).abs().max().item<float>() > 1e-3);
    }

    [Fact]
    public void Gpt2Conv1DIsRefusedNamingTheModule()
    {
        using var scope = torch.NewDisposeScope();
        var (model, _) = TunerContract.Base("gpt2-clm");
        var error = Assert.Throws<PeftConfigException>(() => PeftModels.Default.GetPeftModel(
            model, new LoHaConfig { TaskType = TaskType.CausalLM, TargetModules = TargetModules.FromNames(["c_attn"]) }));
        Assert.Contains("transformer.h.0.attn.c_attn", error.Message);
        Assert.Contains("LOHA", error.Message);
    }

    [Theory]
    [InlineData("""{"peft_type": "LOHA", "r": 0}""", "`r`")]
    [InlineData("""{"peft_type": "LOHA", "rank_dropout": 1.0}""", "`rank_dropout`")]
    [InlineData("""{"peft_type": "LOKR", "module_dropout": -0.1}""", "`module_dropout`")]
    [InlineData("""{"peft_type": "LOKR", "rank_pattern": {"q_proj": 0}}""", "`rank_pattern`")]
    [InlineData("""{"peft_type": "LOHA", "layers_pattern": "layers"}""", "`layers_to_transform`")]
    public void InvalidConfigsAreRefusedNamingTheField(string json, string field)
    {
        var config = Parse(json);
        var error = Assert.Throws<PeftConfigException>(config.Validate);
        Assert.Contains(field, error.Message);
    }

    [Fact]
    public void RankAndAlphaPatternsApplyPerModule()
    {
        var config = new LoHaConfig
        {
            R = 4,
            Alpha = 8,
            RankPattern = new Dictionary<string, int> { ["layers.1.self_attn.q_proj"] = 2 },
            AlphaPattern = new Dictionary<string, double> { ["v_proj"] = 3 },
        };
        Assert.Equal(2, config.RankFor("model.layers.1.self_attn.q_proj"));
        Assert.Equal(4, config.RankFor("model.layers.0.self_attn.q_proj"));
        Assert.Equal(4, config.RankFor("model.layers.11.self_attn.q_proj"));
        Assert.Equal(3, config.AlphaFor("model.layers.0.self_attn.v_proj"));
        Assert.Equal(8, config.AlphaFor("model.layers.0.self_attn.q_proj"));
    }

    private static Peft.Methods.Lycoris.LycorisConfig Parse(string json)
    {
        using var document = JsonDocument.Parse(json);
        var type = document.RootElement.GetProperty("peft_type").GetString();
        return type == "LOHA"
            ? (LoHaConfig)new LoHaMethod().ParseConfig(document.RootElement, "adapter_config.json")
            : (LoKrConfig)new LoKrMethod().ParseConfig(document.RootElement, "adapter_config.json");
    }
}
