using Peft.Methods.PrefixTuning;
using Peft.Methods.PromptTuning;
using Peft.Methods.PTuning;
using Peft.Modeling;
using Peft.PromptLearning;
using Peft.Tests.Checkpoints;
using TorchSharp;
using static TorchSharp.torch;

namespace Peft.Tests.PromptLearning;

/// <summary>Prompt learning end to end on a tiny GPT-2: generation with the cache, saving and loading.</summary>
public class PromptLearningModelTests
{
    public static TheoryData<string> Methods => ["prompt", "ptuning", "ptuning_lstm", "prefix", "prefix_proj"];

    private static PeftConfig Config(string method) => method switch
    {
        "prompt" => new PromptTuningConfig { NumVirtualTokens = 3 },
        "ptuning" => new PromptEncoderConfig { NumVirtualTokens = 3, EncoderHiddenSize = 6 },
        "ptuning_lstm" => new PromptEncoderConfig { NumVirtualTokens = 3, EncoderHiddenSize = 6, EncoderReparameterizationType = "LSTM" },
        "prefix" => new PrefixTuningConfig { NumVirtualTokens = 3 },
        _ => new PrefixTuningConfig { NumVirtualTokens = 3, PrefixProjection = true, EncoderHiddenSize = 6 },
    };

    /// <summary>Greedy decoding that reruns the whole sequence each step (no cache).</summary>
    private static Tensor GreedyWithoutCache(PeftModel peft, Tensor ids, int steps)
    {
        using var noGrad = torch.no_grad();
        for (int i = 0; i < steps; i++)
        {
            var logits = peft.call(new ModelInputs { InputIds = ids, AttentionMask = torch.ones_like(ids) }).Logits;
            ids = torch.cat([ids, logits[.., -1].argmax(-1).unsqueeze(1)], dim: 1);
        }
        return ids;
    }

    [Theory]
    [MemberData(nameof(Methods))]
    public void GenerationWithTheCacheEqualsRecomputing(string method)
    {
        var peft = TinyModels.Peft(TinyModels.Gpt2(TaskType.CausalLM, seed: 3, vocab: 40), Config(method));
        peft.eval();
        var prompt = TinyModels.Ids([11, 4, 27, 8], [3, 19, 30, 2]);

        var cached = peft.Generate(prompt, torch.ones_like(prompt), maxNewTokens: 6);

        Assert.Equal(GreedyWithoutCache(peft, prompt, 6).data<long>().ToArray(), cached.data<long>().ToArray());
        using (peft.DisableAdapter())
        {
            Assert.NotEqual(cached.data<long>().ToArray(), peft.Generate(prompt, torch.ones_like(prompt), maxNewTokens: 6).data<long>().ToArray());
        }
    }

    [Theory]
    [MemberData(nameof(Methods))]
    public void SavedAdaptersLoadBackWithTheSameOutputs(string method)
    {
        using var scratch = new ScratchDirectory();
        var ids = TinyModels.Ids([11, 4, 7], [3, 9, 2]);
        var peft = TinyModels.Peft(TinyModels.Gpt2(TaskType.CausalLM), Config(method));
        peft.eval();
        var expected = peft.call(new ModelInputs { InputIds = ids }).Logits;
        peft.SavePretrained(scratch.Path);
        var json = File.ReadAllText(System.IO.Path.Combine(scratch.Path, "adapter_config.json"));
        Assert.DoesNotContain("\"PeftType\"", json);
        Assert.Contains("\"peft_type\": \"" + peft.PeftConfig.PeftType + "\"", json);

        var loaded = PeftModels.Default.FromPretrained(TinyModels.Gpt2(TaskType.CausalLM), scratch.Path);

        TinyModels.AssertClose(expected, loaded.call(new ModelInputs { InputIds = ids }).Logits);
        // The file holds the encoder's output: the loaded encoder is only the embedding, holding the prompts.
        var encoder = ((PromptLearningAdapter)loaded.ActiveAdapter).Encoder;
        Assert.True(encoder.InferenceMode);
        Assert.Single(encoder.parameters());
    }

    [Fact]
    public void ATrainableLoadOfAReparameterisedEncoderTrainsTheSavedPrompts()
    {
        using var scratch = new ScratchDirectory();
        var ids = TinyModels.Ids([11, 4, 7]);
        var peft = TinyModels.Peft(TinyModels.Gpt2(TaskType.CausalLM), Config("ptuning"));
        Assert.False(((PromptLearningAdapter)peft.ActiveAdapter).SavesTrainingState);
        peft.eval();
        var expected = peft.call(new ModelInputs { InputIds = ids }).Logits;
        peft.SavePretrained(scratch.Path);

        var loaded = PeftModels.Default.FromPretrained(TinyModels.Gpt2(TaskType.CausalLM), scratch.Path, isTrainable: true);
        loaded.eval();

        TinyModels.AssertClose(expected, loaded.call(new ModelInputs { InputIds = ids }).Logits);
        Assert.Equal(["prompt_encoder.default.embedding.weight"], loaded.TrainableParameters().Select(p => p.Name));
    }

    [Fact]
    public void ClassificationHeadsTrainAndSaveAsModulesToSave()
    {
        using var scratch = new ScratchDirectory();
        var peft = TinyModels.Peft(TinyModels.Gpt2(TaskType.TokenClassification), new PrefixTuningConfig { NumVirtualTokens = 2 });

        Assert.Equal(
            ["base_model.classifier.modules_to_save.default.bias", "base_model.classifier.modules_to_save.default.weight", "prompt_encoder.default.embedding.weight"],
            peft.TrainableParameters().Select(p => p.Name).Order(StringComparer.Ordinal));
        Assert.Equal(["base_model.classifier.bias", "base_model.classifier.weight", "prompt_embeddings"], peft.ActiveAdapter.GetStateDict().Keys.Order(StringComparer.Ordinal));
        Assert.Contains("classifier", ((PromptLearningConfig)peft.PeftConfig).ModulesToSave!);
    }

    [Fact]
    public void TokenClassificationWithVirtualTokensIgnoresTheirLabels()
    {
        var peft = TinyModels.Peft(TinyModels.Gpt2(TaskType.TokenClassification), new PromptTuningConfig { NumVirtualTokens = 2 });
        var ids = TinyModels.Ids([11, 4, 7]);

        var output = peft.call(new ModelInputs { InputIds = ids, Labels = TinyModels.Ids([1, 0, 1]) });

        Assert.Equal(new long[] { 1, 5, 2 }, output.Logits.shape);
        var expected = nn.functional.cross_entropy(output.Logits[0, 2..], torch.tensor(new long[] { 1, 0, 1 }));
        TinyModels.AssertClose(expected, output.Loss!);
    }

    [Fact]
    public void AProjectedPrefixCannotBeLoadedIntoATrainableProjection()
    {
        using var scratch = new ScratchDirectory();
        TinyModels.Peft(TinyModels.Gpt2(TaskType.CausalLM), Config("prefix_proj")).SavePretrained(scratch.Path);
        var config = (PrefixTuningConfig)PeftModels.Default.ReadAdapterConfig(scratch.Path) with { InferenceMode = false };
        var peft = TinyModels.Peft(TinyModels.Gpt2(TaskType.CausalLM), config);
        var saved = Peft.Checkpoints.SafeTensors.Load(System.IO.Path.Combine(scratch.Path, "adapter_model.safetensors"));

        var error = Assert.Throws<InvalidDataException>(() => peft.ActiveAdapter.LoadStateDict(saved, "adapter_model.safetensors"));
        Assert.Contains("prefix_projection", error.Message);
    }
}
