using Peft.Checkpoints;
using Peft.Tests.Checkpoints;
using TorchSharp;

namespace Peft.Tests.Backbones;

/// <summary>A model directory with a sharded checkpoint (index + shards) loads like the single-file one.</summary>
public class ShardedLoadTests
{
    [Fact]
    public void ShardedLlamaGivesTheSameLogitsAsTheSingleFile()
    {
        using var scope = torch.NewDisposeScope();
        using var scratch = new ScratchDirectory();
        var source = Fixtures.Path("models", "llama-clm");
        var weights = ModelWeights.Load(source);
        ModelWeights.Save(scratch.Path, weights, maxShardBytes: 20_000);
        File.Copy(Path.Combine(source, "config.json"), scratch.File("config.json"));

        Assert.False(File.Exists(scratch.File(ModelWeights.SingleFileName)));
        Assert.True(File.Exists(scratch.File(ModelWeights.IndexFileName)));
        Assert.True(Directory.GetFiles(scratch.Path, "model-*-of-*.safetensors").Length >= 3);

        var inputs = DecoderFixtures.Inputs("llama-clm-lora");
        var single = PeftModels.Default.LoadPretrained(source, TaskType.CausalLM);
        var sharded = PeftModels.Default.LoadPretrained(scratch.Path, TaskType.CausalLM);
        using var noGrad = torch.no_grad();
        var expected = single.call(inputs).Logits;
        var actual = sharded.call(inputs).Logits;

        Assert.True(actual.equal(expected).all().item<bool>(), $"max diff {(actual - expected).abs().max().item<float>()}");
        Assert.True(actual.allclose(DecoderFixtures.Io("llama-clm-lora")["output.base_logits"], rtol: 0, atol: 1e-5));
    }
}
