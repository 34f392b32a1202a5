using System.Text.Json.Nodes;
using Peft.Methods.Lora;
using Peft.Modeling;
using Peft.Tuners;
using TorchSharp;

namespace Peft.Tests.Checkpoints;

/// <summary>PeftModels.SavePretrained writes a model directory that loads back to the same model.</summary>
public class SavePretrainedTests
{
    [Fact]
    public void AMergedModelOnATiedEmbeddingLoadsBackUntiedWithTheSameOutputs()
    {
        using var scope = torch.NewDisposeScope();
        using var scratch = new ScratchDirectory();
        var source = Fixtures.Path("models", "gpt2-clm");
        var peft = PeftModels.Default.GetPeftModel(PeftModels.Default.LoadPretrained(source, TaskType.CausalLM),
            new LoraConfig { TaskType = TaskType.CausalLM, TargetModules = TargetModules.FromNames(["wte", "c_attn"]) });
        using (torch.no_grad())
        {
            foreach (var (_, parameter) in peft.TrainableParameters()) parameter.normal_(0, 0.05);
        }
        var ids = torch.tensor(new long[] { 3, 14, 15, 9, 2 }).unsqueeze(0);
        var adapted = peft.call(new ModelInputs { InputIds = ids }).Logits.detach();
        var merged = peft.MergeAndUnload();

        PeftModels.SavePretrained(merged, scratch.Path, source);

        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(scratch.Path, "config.json")))!;
        Assert.False(config["tie_word_embeddings"]!.GetValue<bool>());
        var reloaded = PeftModels.Default.LoadPretrained(scratch.Path, TaskType.CausalLM);
        var logits = reloaded.call(new ModelInputs { InputIds = ids }).Logits;
        Assert.True(torch.allclose(logits, adapted, rtol: 1e-4, atol: 1e-5), $"max |diff| {(logits - adapted).abs().max().item<float>()}");
    }
}
