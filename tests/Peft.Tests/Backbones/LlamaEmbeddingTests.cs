using System.Text.Json;
using Peft.Methods.Lora;
using Peft.Modeling;
using Peft.Tests.Checkpoints;
using Peft.Tuners;
using TorchSharp;
using static TorchSharp.torch;

namespace Peft.Tests.Backbones;

/// <summary>Llama's token embedding with a padding index.</summary>
public class LlamaEmbeddingTests
{
    [Fact]
    public void LoraOnAnEmbeddingWithAPaddingIndexLeavesThePaddingRowsGradientAtZero()
    {
        using var scope = NewDisposeScope();
        using var scratch = new ScratchDirectory();
        const long pad = 3;
        var model = DecoderFixtures.LoadWith("llama-clm", scratch, c => c["pad_token_id"] = pad);
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
}
