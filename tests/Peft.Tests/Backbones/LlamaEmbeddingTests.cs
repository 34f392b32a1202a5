using System.Text.Json;
using System.Text.Json.Nodes;
using Peft.Methods.Lora;
using Peft.Modeling;
using Peft.Tests.Checkpoints;
using Peft.Tuners;
using TorchSharp;
using static TorchSharp.torch;

namespace Peft.Tests.BackboneChecks;

/// <summary>Llama's token embedding with a padding index, and its output head tied to it.</summary>
public class LlamaEmbeddingTests
{
    /// <summary>The llama fixture with config.json edited.</summary>
    private static PreTrainedModel LoadWith(ScratchDirectory scratch, Action<JsonObject> edit)
    {
        var source = Fixtures.Path("models", "llama-clm");
        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(source, "config.json")))!.AsObject();
        edit(config);
        File.WriteAllText(scratch.File("config.json"), config.ToJsonString());
        File.Copy(Path.Combine(source, "model.safetensors"), scratch.File("model.safetensors"));
        return PeftModels.Default.LoadPretrained(scratch.Path, TaskType.CausalLM);
    }

    [Fact]
    public void LoraOnAnEmbeddingWithAPaddingIndexLeavesThePaddingRowsGradientAtZero()
    {
        using var scope = NewDisposeScope();
        using var scratch = new ScratchDirectory();
        const long pad = 3;
        var model = LoadWith(scratch, c => c["pad_token_id"] = pad);
        var peft = PeftModels.Default.GetPeftModel(model, new LoraConfig
        {
            R = 4,
            TargetModules = TargetModules.FromNames(["embed_tokens", "q_proj"]),
            InitLoraWeights = JsonSerializer.SerializeToElement(false),
            TaskType = TaskType.CausalLM,
        });
        var ids = tensor(new long[,] { { 5, pad, 7, 9, pad, 11 }, { pad, 2, 4, 6, 8, 10 } });

        peft.train();
        peft.call(new ModelInputs { InputIds = ids, Labels = ids }).Loss!.backward();

        var a = peft.TrainableParameters().Single(p => p.Name.EndsWith("embed_tokens.lora_embedding_A.default", StringComparison.Ordinal)).Parameter;
        var grad = a.grad!;                                                   // (r, vocab)
        Assert.True(grad[.., pad].eq(0).all().item<bool>(), "the padding row must get no gradient");
        Assert.True(grad[.., 5].ne(0).any().item<bool>(), "other used rows must");
    }

    [Fact]
    public void ATiedHeadReadsTheEmbeddingWeight()
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        using var untiedScratch = new ScratchDirectory();
        using var tiedScratch = new ScratchDirectory();
        var untied = LoadWith(untiedScratch, _ => { });
        var tied = LoadWith(tiedScratch, c => c["tie_word_embeddings"] = true);

        Assert.Empty(untied.TiedWeights);
        Assert.Equal([("lm_head.weight", "model.embed_tokens.weight")], tied.TiedWeights);
        Assert.DoesNotContain("lm_head.weight", tied.state_dict().Keys);

        // With the head's weight set to the embedding's, the untied model must compute what the tied one does.
        var inputs = DecoderFixtures.Inputs("llama-clm-lora");
        var head = untied.named_modules().Single(m => m.name == "lm_head").module;
        ((TorchSharp.Modules.Linear)head).weight!.copy_(untied.state_dict()["model.embed_tokens.weight"]);
        Assert.True(tied.call(inputs).Logits.allclose(untied.call(inputs).Logits, rtol: 0, atol: 1e-6));
    }
}
