using System.Text.Json;
using Peft.Checkpoints;
using Peft.Methods.Vera;
using Peft.Modeling;
using Peft.Tests.Checkpoints;
using Peft.Tuners;
using TorchSharp;

namespace Peft.Tests.Methods;

/// <summary>VeRA: the seeded projections, save_projection both ways, merging, and config validation.</summary>
public class VeraTests
{
    [Theory]
    [InlineData("gpt2-clm-vera", 32, 96)]
    [InlineData("llama-clm-vera", 32, 32)]
    public void ProjectionsDrawnFromTheSeedEqualTheReferenceFileBitForBit(string caseName, long largestIn, long largestOut)
    {
        using var scope = torch.NewDisposeScope();
        var saved = SafeTensors.Load(Fixtures.Path("cases", caseName, "adapter", "adapter_model.safetensors"));
        var drawn = new VeraProjections(8, largestIn, largestOut, seed: 0, saved: true);
        Assert.True(drawn.A.eq(saved["base_model.vera_A"]).all().item<bool>(), "vera_A differs from torch's generator");
        Assert.True(drawn.B.eq(saved["base_model.vera_B"]).all().item<bool>(), "vera_B differs from torch's generator");
    }

    [Theory]
    [InlineData("gpt2-clm", "c_attn")]
    [InlineData("llama-clm", "q_proj,v_proj")]
    public void MergedOutputsEqualUnmergedOnes(string model, string targets) =>
        TunerContract.MergeMatchesUnmerged(model, Config(targets, fanInFanOut: true)); // a wrong flag on Linear is reset, as the reference does

    [Fact]
    public void SavedProjectionsTravelWithTheAdapter()
    {
        var keys = TunerContract.SavedAdapterReloads("llama-clm", Config("q_proj,v_proj"));
        Assert.Contains("base_model.vera_A", keys);
        Assert.Contains("base_model.vera_B", keys);
        Assert.Contains("base_model.model.model.layers.0.self_attn.q_proj.vera_lambda_b", keys);
    }

    [Fact]
    public void WithoutSaveProjectionTheProjectionsAreRedrawnFromTheSeed()
    {
        var keys = TunerContract.SavedAdapterReloads("llama-clm", Config("q_proj,v_proj") with { SaveProjection = false, ProjectionPrngKey = 1234 });
        Assert.DoesNotContain("base_model.vera_A", keys);
        Assert.Equal(8, keys.Count); // two vectors on each of four layers
    }

    [Fact]
    public void AFileWithoutTheProjectionsItPromisesIsRefused()
    {
        using var scope = torch.NewDisposeScope();
        using var scratch = new ScratchDirectory();
        var peft = TunerContract.Attach("llama-clm", Config("q_proj,v_proj") with { SaveProjection = false }, out _, out _);
        peft.SavePretrained(scratch.Path);
        var configPath = scratch.File("adapter_config.json");
        File.WriteAllText(configPath, File.ReadAllText(configPath).Replace("\"save_projection\": false", "\"save_projection\": true"));
        var error = Assert.Throws<InvalidDataException>(() => PeftModels.Default.FromPretrained(TunerContract.Base("llama-clm").Model, scratch.Path));
        Assert.Contains("base_model.vera_A", error.Message);
    }

    [Fact]
    public void ASecondAdapterMustUseTheSameSeed()
    {
        using var scope = torch.NewDisposeScope();
        var peft = TunerContract.Attach("llama-clm", Config("q_proj,v_proj"), out _, out _);
        var error = Assert.Throws<PeftConfigException>(() => peft.AddAdapter("other", Config("q_proj") with { ProjectionPrngKey = 5 }));
        Assert.Contains("projection_prng_key", error.Message);
        peft.AddAdapter("same", Config("q_proj"));
        Assert.Contains("same", peft.Adapters.Keys);
    }

    [Theory]
    [InlineData("""{"peft_type": "VERA", "r": 0}""", "`r`")]
    [InlineData("""{"peft_type": "VERA", "bias": "all"}""", "`bias`")]
    [InlineData("""{"peft_type": "VERA", "vera_dropout": 1.5}""", "`vera_dropout`")]
    public void InvalidConfigsAreRefusedNamingTheField(string json, string field)
    {
        using var document = JsonDocument.Parse(json);
        var config = new VeraMethod().ParseConfig(document.RootElement, "adapter_config.json");
        var error = Assert.Throws<PeftConfigException>(config.Validate);
        Assert.Contains(field, error.Message);
    }

    private static VeraConfig Config(string targets, bool fanInFanOut = false) => new()
    {
        TaskType = TaskType.CausalLM,
        TargetModules = TargetModules.FromNames(targets.Split(',')),
        R = 8,
        FanInFanOut = fanInFanOut,
        InitWeights = false,
    };
}
