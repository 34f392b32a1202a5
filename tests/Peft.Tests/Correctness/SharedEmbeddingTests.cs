using System.Text.Json;
using System.Text.Json.Nodes;
using Peft.Methods.Lora;
using Peft.Modeling;
using Peft.Tests.Checkpoints;
using Peft.Tuners;
using TorchSharp;
using static Peft.Tests.Correctness.TinyFixtures;
using static TorchSharp.torch;

namespace Peft.Tests.Correctness;

/// <summary>
/// T5's and BART's stack embeddings (<c>encoder.embed_tokens</c>, <c>decoder.embed_tokens</c>) and tied <c>lm_head</c>:
/// modules of their own over <c>shared</c>'s weight, as transformers 5 builds them, so adapters and modules_to_save reach them.
/// </summary>
public class SharedEmbeddingTests
{
    private static ModelInputs Batch(long vocab) => new()
    {
        InputIds = torch.tensor(new long[] { 3, 5, 7, 12, 9, 11, 4, 8, 6, 12 }, [2, 5]) % vocab,
        DecoderInputIds = torch.tensor(new long[] { 2, 21, 22, 23, 2, 24, 25, 26 }, [2, 4]) % vocab,
    };

    private static LoraConfig Lora(string[] targets, string[]? save = null) => new()
    {
        TaskType = TaskType.Seq2SeqLM,
        TargetModules = TargetModules.FromNames(targets),
        ModulesToSave = save,
        R = 4,
        LoraAlpha = 8,
        InitLoraWeights = JsonSerializer.SerializeToElement(false),
    };

    /// <summary>A fixture model with its config.json edited, in a scratch folder.</summary>
    private static PreTrainedModel LoadEdited(string name, ScratchDirectory scratch, Action<JsonObject> edit)
    {
        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(Model(name), "config.json")))!.AsObject();
        edit(config);
        File.WriteAllText(scratch.File("config.json"), config.ToJsonString());
        File.Copy(Path.Combine(Model(name), "model.safetensors"), scratch.File("model.safetensors"));
        return PeftModels.Default.LoadPretrained(scratch.Path, TaskType.Seq2SeqLM);
    }

    private static Tensor Weight(PreTrainedModel model, string name) => model.state_dict()[name];

    private static Tensor LoraDelta(PeftModel peft, string path, Tensor ids)
    {
        var parameters = peft.TrainableParameters().ToDictionary(p => p.Name, p => p.Parameter);
        var a = parameters[$"base_model.model.{path}.lora_embedding_A.default"];
        var b = parameters[$"base_model.model.{path}.lora_embedding_B.default"];
        return torch.matmul(a.T.index_select(0, ids.reshape(-1)).reshape([.. ids.shape, a.shape[0]]), b.T) * (8.0 / 4.0);
    }

    [Theory]
    [InlineData("t5-s2s", "shared.weight", "encoder.embed_tokens", "decoder.embed_tokens", 0.0)]
    [InlineData("bart-s2s", "model.shared.weight", "model.encoder.embed_tokens", "model.decoder.embed_tokens", 1.0)]
    [InlineData("bart-s2s", "model.shared.weight", "model.encoder.embed_tokens", "model.decoder.embed_tokens", 0.0)]
    public void LoraOnEmbedTokensAdaptsEachStacksEmbeddingOverTheSharedWeight(string name, string shared, string encoder, string decoder, double scaleEmbedding)
    {
        using var scope = torch.NewDisposeScope();
        using var scratch = new ScratchDirectory();
        // scaleEmbedding 0 leaves the fixture as it is; 1 turns BART's scale_embedding on (embed_scale √d_model).
        var model = LoadEdited(name, scratch, c => { if (scaleEmbedding > 0) c["scale_embedding"] = true; });
        var inputs = Batch(model.Config.VocabSize);
        model.eval();
        var sharedWeight = Weight(model, shared);
        var scale = model.Config is Peft.Backbones.Bart.BartConfig bart ? bart.EmbedScale : 1.0;
        Assert.Equal(scaleEmbedding > 0, scale > 1.0);
        torch.manual_seed(3);
        var target = name.StartsWith("bart", StringComparison.Ordinal) ? "q_proj" : "q";
        var peft = PeftModels.Default.GetPeftModel(model, Lora([target, "embed_tokens"]));
        peft.eval();

        var trainable = peft.TrainableParameters().Select(p => p.Name).ToHashSet();
        Assert.Contains($"base_model.model.{encoder}.lora_embedding_A.default", trainable);
        Assert.Contains($"base_model.model.{decoder}.lora_embedding_B.default", trainable);

        // What the reference computes: each stack looks its ids up in the shared weight (times BART's embed_scale) and
        // adds its own LoRA update (not scaled); the rest of the model is the adapted one with these embeddings given.
        using var noGrad = torch.no_grad();
        Tensor Embeds(Tensor ids, string path) => sharedWeight.index_select(0, ids.reshape(-1)).reshape([.. ids.shape, sharedWeight.shape[1]]) * scale + LoraDelta(peft, path, ids);
        var expected = peft.call(new ModelInputs
        {
            InputsEmbeds = Embeds(inputs.InputIds!, encoder),
            DecoderInputsEmbeds = Embeds(inputs.DecoderInputIds!, decoder),
        }).Logits;
        var adapted = peft.call(inputs).Logits;
        Assert.True(MaxDifference(adapted, expected) < 1e-5, $"max difference {MaxDifference(adapted, expected)}");
        using (peft.DisableAdapter()) Assert.True(MaxDifference(peft.call(inputs).Logits, adapted) > 1e-4);

        using var saved = new ScratchDirectory();
        peft.SavePretrained(saved.Path);
        var keys = SavedTensors(saved.Path).Keys.ToHashSet();
        Assert.Contains($"base_model.model.{encoder}.lora_embedding_A", keys);
        Assert.Contains($"base_model.model.{decoder}.lora_embedding_B", keys);
        var reloaded = PeftModels.Default.FromPretrained(LoadEdited(name, new ScratchDirectory(), c => { if (scaleEmbedding > 0) c["scale_embedding"] = true; }), saved.Path);
        reloaded.eval();
        Assert.True(MaxDifference(reloaded.call(inputs).Logits, adapted) < 1e-6);
    }

    [Theory]
    [InlineData("t5-s2s", "shared.weight", "encoder.embed_tokens", "decoder.embed_tokens")]
    [InlineData("bart-s2s", "model.shared.weight", "model.encoder.embed_tokens", "model.decoder.embed_tokens")]
    public void TheStackEmbeddingsAreTheSharedParameterCountedAndTrainedOnce(string name, string shared, string encoder, string decoder)
    {
        using var scope = torch.NewDisposeScope();
        var model = Load(name, TaskType.Seq2SeqLM);
        var state = model.state_dict();
        Assert.Equal(state[shared].Handle, state[encoder + ".weight"].Handle);
        Assert.Equal(state[shared].Handle, state[decoder + ".weight"].Handle);
        Assert.Equal(state[shared].Handle, state["lm_head.weight"].Handle);
        // named_parameters (the optimizer's list) holds it once, as PyTorch's does.
        Assert.Single(model.named_parameters(), p => p.parameter.shape.SequenceEqual(state[shared].shape));

        // Full fine-tuning with the head untied (its gradient would reach every row): an id only the encoder reads
        // gets a gradient in the one shared weight, an id nothing reads gets none.
        using var scratch = new ScratchDirectory();
        var untied = LoadEdited(name, scratch, c => c["tie_word_embeddings"] = false);
        var inputs = Batch(untied.Config.VocabSize) with { DecoderInputIds = null, Labels = torch.tensor(new long[] { 21, 22, 23, 24, 25, 26, 27, 28 }, [2, 4]) };
        foreach (var p in untied.parameters()) p.requires_grad = true;
        untied.call(inputs).Loss!.backward();
        var grad = untied.named_parameters().Single(p => p.name == shared).parameter.grad!;
        Assert.True(grad[3].abs().sum().item<float>() > 0, "an id only the encoder reads has no gradient in the shared weight");
        Assert.Equal(0f, grad[100].abs().sum().item<float>());
    }

    [Theory]
    [InlineData("t5-s2s", "shared.weight")]
    [InlineData("bart-s2s", "model.shared.weight")]
    public void AnInitialisationFreeLoadTiesTheStackEmbeddingsToo(string name, string shared)
    {
        using var scope = torch.NewDisposeScope();
        var plain = Load(name, TaskType.Seq2SeqLM);
        var mapped = PeftModels.Default.LoadPretrained(Model(name), TaskType.Seq2SeqLM, new ModelLoadOptions { LowCpuMemoryUsage = true });
        var state = mapped.state_dict();
        foreach (var (tied, source) in mapped.TiedWeights) Assert.Equal(state[source].Handle, state[tied].Handle);
        Assert.Single(mapped.named_parameters(), p => p.parameter.shape.SequenceEqual(state[shared].shape));
        Assert.True(MaxDifference(Logits(mapped, name), Logits(plain, name)) == 0);
    }

    [Fact]
    public void ModulesToSaveOnEmbedTokensTrainsAnIndependentCopyPerStack()
    {
        using var scope = torch.NewDisposeScope();
        var model = Load("t5-s2s", TaskType.Seq2SeqLM);
        var shared = Weight(model, "shared.weight").detach().clone();
        // The recipe for new tokens: both embeddings and the (tied) head trained in full.
        var peft = PeftModels.Default.GetPeftModel(model, Lora(["q"], ["embed_tokens", "lm_head"]));
        var trainable = peft.TrainableParameters().ToDictionary(p => p.Name, p => p.Parameter);
        Assert.Contains("base_model.model.lm_head.modules_to_save.default.weight", trainable.Keys);
        var encoderCopy = trainable["base_model.model.encoder.embed_tokens.modules_to_save.default.weight"];
        var decoderCopy = trainable["base_model.model.decoder.embed_tokens.modules_to_save.default.weight"];
        Assert.DoesNotContain(trainable.Keys, n => n.Contains("shared", StringComparison.Ordinal));

        using (torch.no_grad()) encoderCopy[3].add_(1.0);
        Assert.True(decoderCopy[3].equal(shared[3]).all().item<bool>());
        Assert.True(Weight(model, "shared.weight")[3].equal(shared[3]).all().item<bool>());
        peft.eval();
        var inputs = Batch(model.Config.VocabSize);
        var moved = peft.call(inputs).Logits.detach().clone();
        using (peft.DisableAdapter()) Assert.True(MaxDifference(peft.call(inputs).Logits, moved) > 1e-4);

        using var saved = new ScratchDirectory();
        peft.SavePretrained(saved.Path);
        var keys = SavedTensors(saved.Path).Keys.ToHashSet();
        Assert.Contains("base_model.model.encoder.embed_tokens.weight", keys);
        Assert.Contains("base_model.model.decoder.embed_tokens.weight", keys);
        Assert.Contains("base_model.model.lm_head.weight", keys);
        var reloaded = PeftModels.Default.FromPretrained(Load("t5-s2s", TaskType.Seq2SeqLM), saved.Path);
        reloaded.eval();
        Assert.True(MaxDifference(reloaded.call(inputs).Logits, moved) < 1e-6);
    }

    [Theory]
    [InlineData("t5-s2s", "q", "shared.weight")]
    [InlineData("bart-s2s", "q_proj", "model.shared.weight")]
    public void LoraOnTheTiedHeadReadsTheSharedWeightAndMergesUntied(string name, string attention, string shared)
    {
        using var scope = torch.NewDisposeScope();
        var model = Load(name, TaskType.Seq2SeqLM);
        var baseLogits = Logits(model, name);
        torch.manual_seed(5);
        var peft = PeftModels.Default.GetPeftModel(model, Lora([attention, "lm_head"]));
        Assert.Contains("base_model.model.lm_head.lora_A.default.weight", peft.TrainableParameters().Select(p => p.Name));
        var state = peft.state_dict();
        Assert.Equal(state["base_model.model." + shared].Handle, state["base_model.model.lm_head.base_layer.weight"].Handle);
        var adapted = Logits(peft, name);
        Assert.True(MaxDifference(adapted, baseLogits) > 1e-3);

        var merged = peft.MergeAndUnload();
        Assert.True(MaxDifference(Logits(merged, name), adapted) < 1e-5);
        // Merging gave the head its own weight; the stacks' embeddings still read the unchanged shared one.
        Assert.True(MaxDifference(merged.state_dict()["lm_head.weight"], merged.state_dict()[shared]) > 1e-4);
        Assert.DoesNotContain(merged.TiedWeights, t => t.Tied == "lm_head.weight");
    }

    [Fact]
    public void MergingLoraOnAStackEmbeddingIsRefusedNamingTheWeightsItShares()
    {
        using var scope = torch.NewDisposeScope();
        var peft = PeftModels.Default.GetPeftModel(Load("t5-s2s", TaskType.Seq2SeqLM), Lora(["q", "embed_tokens"]));
        var error = Assert.Throws<NotSupportedException>(() => peft.Merge());
        Assert.Contains("'encoder.embed_tokens'", error.Message);
        Assert.Contains("'shared.weight'", error.Message);
    }

    private static Tensor Logits(nn.Module<ModelInputs, ModelOutputs> model, string name)
    {
        using var noGrad = torch.no_grad();
        model.eval();
        return model.call(Batch(128)).Logits.detach().clone();
    }

    [Theory]
    [InlineData("t5-s2s", "q", "shared.weight", "encoder.embed_tokens.weight", "decoder.embed_tokens.weight", "lm_head.weight")]
    [InlineData("bart-s2s", "q_proj", "model.shared.weight", "model.encoder.embed_tokens.weight", "model.decoder.embed_tokens.weight", "lm_head.weight")]
    public void ConvertingTheModelKeepsTheSharedWeightOneParameter(string name, string target, params string[] tied)
    {
        using var scope = torch.NewDisposeScope();
        foreach (var dtype in new[] { ScalarType.Float64, ScalarType.BFloat16 })
        {
            var model = Load(name, TaskType.Seq2SeqLM);
            var peft = PeftModels.Default.GetPeftModel(model, Lora([target]));
            var parameters = model.named_parameters().Count();
            var line = peft.TrainableParametersLine();

            peft.to(dtype);

            Assert.Equal(parameters, model.named_parameters().Count());
            Assert.Equal(line, peft.TrainableParametersLine());
            var weights = model.state_dict();
            Assert.All(tied, key => Assert.Equal(dtype, weights[key].dtype));
            // One tensor behind every name: a change through one is seen through all.
            using (torch.no_grad()) weights[tied[0]].add_(1);
            Assert.All(tied.Skip(1), key => Assert.True(weights[key].eq(weights[tied[0]]).all().item<bool>(), $"{key} is no longer {tied[0]}"));
        }
    }
}
