using System.Text.Json;
using Peft.Methods.Boft;
using Peft.Methods.Oft;
using Peft.Modeling;
using Peft.Tuners;
using TorchSharp;
using static TorchSharp.torch;

namespace Peft.Tests.Methods;

/// <summary>OFT and BOFT: orthogonal blocks, butterfly factors, merging, saving and config validation.</summary>
public class OrthogonalTests
{
    private static readonly TargetModules QV = TargetModules.FromNames(["q_proj", "v_proj"]);

    [Theory]
    [InlineData(true, false)]
    [InlineData(false, false)]
    [InlineData(true, true)]
    public void OftMergedOutputsEqualUnmergedOnes(bool neumann, bool coft) =>
        TunerContract.MergeMatchesUnmerged("llama-clm", new OftConfig
        {
            TaskType = TaskType.CausalLM, TargetModules = QV, OftBlockSize = 8, InitWeights = false, UseCayleyNeumann = neumann, Coft = coft, Eps = 0.5,
        });

    [Fact]
    public void OftSavesItsSkewVectorsAndReloads()
    {
        var keys = TunerContract.SavedAdapterReloads("llama-clm", new OftConfig { TaskType = TaskType.CausalLM, TargetModules = QV, R = 4, OftBlockSize = 0, InitWeights = false });
        Assert.Contains("base_model.model.model.layers.0.self_attn.q_proj.oft_R.weight", keys);
        Assert.Equal(4, keys.Count);
    }

    [Fact]
    public void ExactCayleyBlocksAreOrthogonalAndSharedBlocksRepeat()
    {
        using var scope = torch.NewDisposeScope();
        torch.manual_seed(1);
        var layer = new OftLayer(nn.Linear(12, 5, hasBias: false));
        layer.AddAdapter("default", new OftConfig { OftBlockSize = 4, InitWeights = false, UseCayleyNeumann = false, BlockShare = true });
        var rotation = layer.Rotation("default");
        Assert.Equal([1L, 6], rotation.Weight.shape); // one shared block of 4: 4·3/2 skew entries
        var m = rotation.Matrix();
        TunerContract.AssertClose(torch.eye(12), torch.mm(m, m.T), 1e-5);
        TunerContract.AssertClose(m[0..4, 0..4], m[8..12, 8..12], 0);
    }

    [Theory]
    [InlineData(32, 5, 4)]   // 4 and 8 divide 32: 4 is nearer
    [InlineData(30, 7, 6)]
    [InlineData(30, 8, 6)]   // a tie between 6 and 10 takes the lower
    [InlineData(30, 40, 30)]
    public void BlockSizesAdjustToADivisorAsTheReferenceDoes(long inFeatures, int requested, int expected) =>
        Assert.Equal(expected, OftLayer.Adjust(inFeatures, requested));

    [Fact]
    public void BoftMergedOutputsEqualUnmergedOnes() =>
        TunerContract.MergeMatchesUnmerged("llama-clm", new BoftConfig { TaskType = TaskType.CausalLM, TargetModules = QV, BoftBlockSize = 4, InitWeights = false });

    [Fact]
    public void BoftSavesRotationsAndScalesAndReloads()
    {
        var keys = TunerContract.SavedAdapterReloads("llama-clm", new BoftConfig { TaskType = TaskType.CausalLM, TargetModules = QV, BoftBlockSize = 0, BoftBlockNum = 4, InitWeights = false });
        Assert.Contains("base_model.model.model.layers.1.self_attn.v_proj.boft_R", keys);
        Assert.Contains("base_model.model.model.layers.1.self_attn.v_proj.boft_s", keys);
    }

    [Fact]
    public void TwoButterflyFactorsGiveAnOrthogonalRotationThatMergesWithABias()
    {
        using var scope = torch.NewDisposeScope();
        torch.manual_seed(4);
        var linear = nn.Linear(16, 6);
        var layer = new BoftLayer(linear);
        layer.AddAdapter("default", new BoftConfig { BoftBlockSize = 4, BoftNButterflyFactor = 2, InitWeights = false });
        layer.ActiveAdapters = ["default"];
        var shapes = layer.named_parameters().ToDictionary(p => p.name, p => p.parameter.shape);
        Assert.Equal([2L, 4, 4, 4], shapes["boft_R.default"]);
        Assert.Equal([6L, 1], shapes["boft_s.default"]);
        layer.eval();
        var x = torch.randn(3, 16);
        var adapted = layer.call(x);
        Assert.True((adapted - linear.call(x)).abs().max().item<float>() > 1e-3);
        // The rotation alone preserves norms: with s = 1 and no bias, |output| = |W x M| where M is orthogonal.
        layer.Merge(["default"]);
        TunerContract.AssertClose(adapted, layer.call(x), 1e-5);
        layer.Unmerge();
        TunerContract.AssertClose(adapted, layer.call(x), 1e-5);
    }

    [Fact]
    public void ButterflyPermutationInterleavesGroups()
    {
        Assert.Equal([0L, 1, 4, 5, 2, 3, 6, 7], Butterfly.Permutation(8, 1, 2, 1));
        Assert.Equal([0L, 1, 2, 3, 4, 5, 6, 7], Butterfly.Permutation(8, 2, 2, 0));
        Assert.Equal([0L, 2, 1, 3, 4, 6, 5, 7], Butterfly.Permutation(8, 2, 1, 1));
    }

    [Fact]
    public void Gpt2Conv1DIsRefusedNamingTheModule()
    {
        using var scope = torch.NewDisposeScope();
        var (model, _) = TunerContract.Base("gpt2-clm");
        var error = Assert.Throws<PeftConfigException>(() => PeftModels.Default.GetPeftModel(
            model, new OftConfig { TaskType = TaskType.CausalLM, TargetModules = TargetModules.FromNames(["c_attn"]), OftBlockSize = 4 }));
        Assert.Contains("transformer.h.0.attn.c_attn", error.Message);
    }

    [Fact]
    public void ABlockLayoutThatDoesNotFitTheLayerIsRefused()
    {
        using var scope = torch.NewDisposeScope();
        var layer = new BoftLayer(nn.Linear(12, 4));
        var error = Assert.Throws<PeftConfigException>(() => layer.AddAdapter("default", new BoftConfig { BoftBlockSize = 5 }));
        Assert.Contains("boft_block_size", error.Message);
        error = Assert.Throws<PeftConfigException>(() => layer.AddAdapter("default", new BoftConfig { BoftBlockSize = 3, BoftNButterflyFactor = 2 }));
        Assert.Contains("boft_n_butterfly_factor", error.Message);
    }

    [Theory]
    [InlineData("""{"peft_type": "OFT", "r": 4, "oft_block_size": 8}""", "oft_block_size")]
    [InlineData("""{"peft_type": "OFT", "r": 0, "oft_block_size": 0}""", "oft_block_size")]
    [InlineData("""{"peft_type": "OFT", "bias": "oft_only"}""", "`bias`")]
    [InlineData("""{"peft_type": "OFT", "num_cayley_neumann_terms": 0}""", "`num_cayley_neumann_terms`")]
    [InlineData("""{"peft_type": "BOFT", "boft_block_size": 4, "boft_block_num": 2}""", "boft_block_num")]
    [InlineData("""{"peft_type": "BOFT", "boft_n_butterfly_factor": 0}""", "boft_n_butterfly_factor")]
    [InlineData("""{"peft_type": "BOFT", "boft_dropout": 2}""", "`boft_dropout`")]
    public void InvalidConfigsAreRefusedNamingTheField(string json, string field)
    {
        using var document = JsonDocument.Parse(json);
        PeftConfig config = document.RootElement.GetProperty("peft_type").GetString() == "OFT"
            ? new OftMethod().ParseConfig(document.RootElement, "adapter_config.json")
            : new BoftMethod().ParseConfig(document.RootElement, "adapter_config.json");
        var error = Assert.Throws<PeftConfigException>(config.Validate);
        Assert.Contains(field, error.Message);
    }
}
