using System.Text.Json;
using Peft.Methods.Lora;
using Peft.Modeling;
using Peft.Tests.Checkpoints;
using Peft.Tuners;
using TorchSharp;
using static Peft.Tests.Correctness.TinyFixtures;

namespace Peft.Tests.Correctness;

/// <summary>target_modules and modules_to_save compared with the model's real modules.</summary>
public class TargetingTests
{
    private static LoraConfig Lora(TaskType task, string[] targets, string[]? save = null) => new()
    {
        TaskType = task,
        TargetModules = TargetModules.FromNames(targets),
        ModulesToSave = save,
        R = 4,
        LoraAlpha = 8,
        InitLoraWeights = JsonSerializer.SerializeToElement(false),
    };

    private static HashSet<string> Trainable(PeftModel peft) => peft.TrainableParameters().Select(p => p.Name).ToHashSet();

    [Fact]
    public void RobertaClassificationWithAllLinearLeavesTheHeadToModulesToSave()
    {
        using var scope = torch.NewDisposeScope();
        var model = Load("roberta-seqcls", TaskType.SequenceClassification);
        var config = new LoraConfig { TaskType = TaskType.SequenceClassification, TargetModules = TargetModules.FromPattern("all-linear"), R = 4 };
        var peft = PeftModels.Default.GetPeftModel(model, config);
        var names = Trainable(peft);
        Assert.Contains("base_model.model.classifier.modules_to_save.default.dense.weight", names);
        Assert.Contains("base_model.model.classifier.modules_to_save.default.out_proj.bias", names);
        Assert.DoesNotContain(names, n => n.Contains("classifier", StringComparison.Ordinal) && n.Contains("lora_", StringComparison.Ordinal));
        Assert.Contains(names, n => n.EndsWith("attention.self.query.lora_A.default.weight", StringComparison.Ordinal));
        Assert.Equal([2L, 2], peft.call(new ModelInputs { InputIds = Ids() }).Logits.shape);
    }

    [Fact]
    public void LoraOnTheTiedLanguageModelHeadAndThePositionEmbedding()
    {
        using var scope = torch.NewDisposeScope();
        var model = Load("gpt2-clm", TaskType.CausalLM);
        var baseLogits = Logits(model);
        torch.manual_seed(1);
        var peft = PeftModels.Default.GetPeftModel(model, Lora(TaskType.CausalLM, ["c_attn", "lm_head", "wpe"]));
        var names = Trainable(peft);
        Assert.Contains("base_model.model.lm_head.lora_A.default.weight", names);
        Assert.Contains("base_model.model.transformer.wpe.lora_embedding_A.default", names);
        // The head's base weight is the embedding's own parameter (tied, as the reference's lm_head): state_dict names it
        // twice, named_parameters (the optimizer's and the counts' list) once.
        var state = peft.state_dict();
        var headBase = state["base_model.model.lm_head.base_layer.weight"];
        var embedding = state["base_model.model.transformer.wte.weight"];
        Assert.Equal(headBase.Handle, embedding.Handle);
        Assert.Single(peft.named_parameters(), p => p.name is "base_model.model.lm_head.base_layer.weight" or "base_model.model.transformer.wte.weight");
        using (torch.no_grad())
        {
            embedding[0, 0].add_(1.0);
            Assert.Equal(embedding[0, 0].item<float>(), headBase[0, 0].item<float>());
            embedding[0, 0].sub_(1.0);
        }

        var adapted = Logits(peft);
        Assert.True(MaxDifference(adapted, baseLogits) > 1e-3);
        using var scratch = new ScratchDirectory();
        peft.SavePretrained(scratch.Path);
        var keys = SavedTensors(scratch.Path).Keys.ToHashSet();
        Assert.Contains("base_model.model.lm_head.lora_B.weight", keys);
        Assert.Contains("base_model.model.transformer.wpe.lora_embedding_B", keys);
        var loaded = PeftModels.Default.FromPretrained(Load("gpt2-clm", TaskType.CausalLM), scratch.Path);
        Assert.True(MaxDifference(Logits(loaded), adapted) < 1e-5);

        var merged = loaded.MergeAndUnload();
        Assert.True(MaxDifference(Logits(merged), adapted) < 1e-4);
    }

    [Fact]
    public void NewTokenRecipeTrainsBothTheEmbeddingAndTheHead()
    {
        using var scope = torch.NewDisposeScope();
        var model = Load("gpt2-clm", TaskType.CausalLM);
        torch.manual_seed(1);
        var peft = PeftModels.Default.GetPeftModel(model, Lora(TaskType.CausalLM, ["c_attn"], ["wte", "lm_head", "wpe", "ln_f"]));
        var names = Trainable(peft);
        foreach (var module in new[] { "transformer.wte", "lm_head", "transformer.wpe", "transformer.ln_f" })
        {
            Assert.Contains($"base_model.model.{module}.modules_to_save.default.weight", names);
        }
        // A training step moves both copies, not the frozen originals.
        var output = peft.call(new ModelInputs { InputIds = Ids(), Labels = Ids() });
        output.Loss!.backward();
        var grads = peft.TrainableParameters().ToDictionary(p => p.Name, p => p.Parameter.grad);
        Assert.True(grads["base_model.model.lm_head.modules_to_save.default.weight"]!.abs().sum().item<float>() > 0);
        Assert.True(grads["base_model.model.transformer.wte.modules_to_save.default.weight"]!.abs().sum().item<float>() > 0);

        using (torch.no_grad())
        {
            foreach (var (_, p) in peft.TrainableParameters()) p.add_(torch.randn_like(p) * 0.05);
        }
        var adapted = Logits(peft);
        using var scratch = new ScratchDirectory();
        peft.SavePretrained(scratch.Path);
        var keys = SavedTensors(scratch.Path).Keys.ToHashSet();
        Assert.Contains("base_model.model.lm_head.weight", keys);
        Assert.Contains("base_model.model.transformer.wte.weight", keys);
        var loaded = PeftModels.Default.FromPretrained(Load("gpt2-clm", TaskType.CausalLM), scratch.Path);
        Assert.True(MaxDifference(Logits(loaded), adapted) < 1e-5);
        using (loaded.DisableAdapter())
        {
            Assert.True(MaxDifference(Logits(loaded), Logits(Load("gpt2-clm", TaskType.CausalLM))) < 1e-5);
        }
    }

    [Fact]
    public void TokenTypeEmbeddingsAndNormsOfOtherArchitectures()
    {
        using var scope = torch.NewDisposeScope();
        var bert = PeftModels.Default.GetPeftModel(Load("bert-seqcls", TaskType.SequenceClassification),
            Lora(TaskType.SequenceClassification, ["query", "token_type_embeddings"], ["LayerNorm"]));
        var names = Trainable(bert);
        Assert.Contains("base_model.model.bert.embeddings.token_type_embeddings.lora_embedding_A.default", names);
        Assert.Contains("base_model.model.bert.embeddings.LayerNorm.modules_to_save.default.weight", names);

        var llama = PeftModels.Default.GetPeftModel(Load("llama-clm", TaskType.CausalLM), Lora(TaskType.CausalLM, ["q_proj", "lm_head"], ["norm"]));
        names = Trainable(llama);
        Assert.Contains("base_model.model.model.norm.modules_to_save.default.weight", names);
        Assert.Contains("base_model.model.lm_head.lora_A.default.weight", names);
    }

    [Theory]
    [InlineData("ln_1", "transformer.h.0.ln_1", "LayerNorm")]
    [InlineData("attn", "transformer.h.0.attn", "GPT2Attention")]
    [InlineData("drop", "transformer.drop", "Dropout")]
    public void TargetThatLoraCannotWrapIsNamedWithItsType(string target, string path, string type)
    {
        using var scope = torch.NewDisposeScope();
        var error = Assert.Throws<PeftConfigException>(() =>
            PeftModels.Default.GetPeftModel(Load("gpt2-clm", TaskType.CausalLM), Lora(TaskType.CausalLM, ["c_attn", target])));
        Assert.Contains($"'{path}'", error.Message);
        Assert.Contains(type, error.Message);
    }

    [Fact]
    public void LoraOnANormSlotIsRefusedNamingItsType()
    {
        using var scope = torch.NewDisposeScope();
        var error = Assert.Throws<PeftConfigException>(() =>
            PeftModels.Default.GetPeftModel(Load("gpt2-clm", TaskType.CausalLM), Lora(TaskType.CausalLM, ["c_attn", "ln_f"])));
        Assert.Contains("transformer.ln_f", error.Message);
        Assert.Contains("LayerNorm", error.Message);
    }

    [Fact]
    public void NamesThatMatchNothingAreErrors()
    {
        using var scope = torch.NewDisposeScope();
        var target = Assert.Throws<PeftConfigException>(() =>
            PeftModels.Default.GetPeftModel(Load("gpt2-clm", TaskType.CausalLM), Lora(TaskType.CausalLM, ["c_attn", "q_proj"])));
        Assert.Contains("'q_proj'", target.Message);
        Assert.Contains("matches no module", target.Message);

        var saved = Assert.Throws<PeftConfigException>(() =>
            PeftModels.Default.GetPeftModel(Load("gpt2-clm", TaskType.CausalLM), Lora(TaskType.CausalLM, ["c_attn"], ["embed_tokens"])));
        Assert.Contains("'embed_tokens'", saved.Message);

        var notASlot = Assert.Throws<PeftConfigException>(() =>
            PeftModels.Default.GetPeftModel(Load("gpt2-clm", TaskType.CausalLM), Lora(TaskType.CausalLM, ["c_attn"], ["attn"])));
        Assert.Contains("'transformer.h.0.attn'", notASlot.Message);
        Assert.Contains("does not declare as a replaceable module", notASlot.Message);
    }
}
