using System.Text.Json;
using System.Text.Json.Nodes;
using Peft.Checkpoints;
using Peft.Methods.IA3;
using Peft.Methods.Lora;
using Peft.Methods.PTuning;
using Peft.Tests.Checkpoints;
using Peft.Tuners;
using TorchSharp;
using static Peft.Tests.Correctness.TinyFixtures;

namespace Peft.Tests.Correctness;

/// <summary>adapter_config.json and adapter_model.safetensors as the reference reads and writes them.</summary>
public class AdapterFilesTests
{
    private static LoraConfig Lora() => Lora(TaskType.CausalLM);

    private static LoraConfig Lora(TaskType? task) => new()
    {
        TaskType = task,
        TargetModules = TargetModules.FromNames(["c_attn"]),
        R = 4,
        LoraAlpha = 8,
        InitLoraWeights = JsonSerializer.SerializeToElement(false),
    };

    private static JsonObject ReadConfig(string directory) =>
        JsonNode.Parse(File.ReadAllText(Path.Combine(directory, "adapter_config.json")))!.AsObject();

    private static void EditConfig(string directory, Action<JsonObject> edit)
    {
        var config = ReadConfig(directory);
        edit(config);
        File.WriteAllText(Path.Combine(directory, "adapter_config.json"), config.ToJsonString());
    }

    private static string SavedLora(ScratchDirectory scratch)
    {
        torch.manual_seed(1);
        PeftModels.Default.GetPeftModel(Load("gpt2-clm", TaskType.CausalLM), Lora()).SavePretrained(scratch.Path);
        return scratch.Path;
    }

    [Theory]
    [InlineData("alora_invocation_tokens", "[1, 2]")]
    [InlineData("trainable_token_indices", "[3]")]
    [InlineData("layer_replication", "[[0, 2]]")]
    [InlineData("target_parameters", "[\"mlp.experts\"]")]
    [InlineData("use_qalora", "true")]
    [InlineData("use_bdlora", "{\"nblocks\": 2}")]
    [InlineData("arrow_config", "{\"top_k\": 2}")]
    [InlineData("ensure_weight_tying", "true")]
    public void FieldsThatChangeTheMathAndAreNotImplementedAreRefusedByNameAndValue(string field, string value)
    {
        using var scope = torch.NewDisposeScope();
        using var scratch = new ScratchDirectory();
        var directory = SavedLora(scratch);
        EditConfig(directory, c => c[field] = JsonNode.Parse(value));
        var error = Assert.Throws<PeftConfigException>(() => PeftModels.Default.FromPretrained(Load("gpt2-clm", TaskType.CausalLM), directory));
        Assert.Contains($"`{field}`", error.Message);
        Assert.Contains(JsonNode.Parse(value)!.ToJsonString().Replace(",", ", ", StringComparison.Ordinal)[..1], error.Message);
        Assert.Contains("not implemented", error.Message);
    }

    [Fact]
    public void InertReferenceFieldsLoadQuietlyAndUnknownKeysWarnAndSurvive()
    {
        using var scope = torch.NewDisposeScope();
        using var scratch = new ScratchDirectory();
        var directory = SavedLora(scratch);
        EditConfig(directory, c =>
        {
            c["alora_invocation_tokens"] = null;
            c["loftq_config"] = new JsonObject();
            c["megatron_core"] = "megatron.core";
            c["future_field"] = 7;
        });
        using var warnings = new CapturedWarnings();
        var peft = PeftModels.Default.FromPretrained(Load("gpt2-clm", TaskType.CausalLM), directory);
        Assert.True(warnings.Any("`future_field`"), string.Join(" | ", warnings.Messages));
        Assert.False(warnings.Any("alora_invocation_tokens") || warnings.Any("loftq_config") || warnings.Any("megatron_core"));
        using var again = new ScratchDirectory();
        peft.SavePretrained(again.Path);
        Assert.Equal(7, ReadConfig(again.Path)["future_field"]!.GetValue<int>());
    }

    [Fact]
    public void PTuningWithInferenceModeFalseLoadsTheSavedPrompts()
    {
        using var scope = torch.NewDisposeScope();
        using var scratch = new ScratchDirectory();
        torch.manual_seed(3);
        var config = new PromptEncoderConfig { TaskType = TaskType.CausalLM, NumVirtualTokens = 3, EncoderHiddenSize = 16 };
        var trained = PeftModels.Default.GetPeftModel(Load("gpt2-clm", TaskType.CausalLM), config);
        trained.eval();
        var expected = Logits(trained);
        trained.SavePretrained(scratch.Path);
        EditConfig(scratch.Path, c => c["inference_mode"] = false);

        foreach (var trainable in new[] { false, true })
        {
            torch.manual_seed(99); // a random encoder would give other prompts
            var loaded = PeftModels.Default.FromPretrained(Load("gpt2-clm", TaskType.CausalLM), scratch.Path, isTrainable: trainable);
            loaded.eval();
            Assert.True(MaxDifference(Logits(loaded), expected) < 1e-5, $"isTrainable {trainable}: the saved prompts");
        }
    }

    [Fact]
    public void InferenceModeFollowsIsTrainable()
    {
        using var scope = torch.NewDisposeScope();
        using var scratch = new ScratchDirectory();
        var directory = SavedLora(scratch);
        EditConfig(directory, c => c["inference_mode"] = false);
        var frozen = PeftModels.Default.FromPretrained(Load("gpt2-clm", TaskType.CausalLM), directory);
        Assert.True(frozen.PeftConfig.InferenceMode);
        Assert.Empty(frozen.TrainableParameters());
        EditConfig(directory, c => c["inference_mode"] = true);
        var trainable = PeftModels.Default.FromPretrained(Load("gpt2-clm", TaskType.CausalLM), directory, isTrainable: true);
        Assert.False(trainable.PeftConfig.InferenceMode);
        Assert.NotEmpty(trainable.TrainableParameters());
    }

    [Fact]
    public void PickleOnlyAdapterIsRefusedWithTheConversionToDo()
    {
        using var scratch = new ScratchDirectory();
        var directory = SavedLora(scratch);
        File.Move(Path.Combine(directory, "adapter_model.safetensors"), Path.Combine(directory, "adapter_model.bin"));
        var error = Assert.Throws<CheckpointException>(() => PeftModels.Default.FromPretrained(Load("gpt2-clm", TaskType.CausalLM), directory));
        Assert.Contains("adapter_model.bin", error.Message);
        Assert.Contains("adapter_model.safetensors", error.Message);
        Assert.Contains("save_file", error.Message);
    }

    [Theory]
    [InlineData("h")]
    [InlineData("0")]
    [InlineData("attn")]
    [InlineData("c_attn")]
    public void AdapterNamedLikeAPathSegmentRoundTrips(string name)
    {
        using var scope = torch.NewDisposeScope();
        using var scratch = new ScratchDirectory();
        torch.manual_seed(1);
        var peft = PeftModels.Default.GetPeftModel(Load("gpt2-clm", TaskType.CausalLM), Lora() with { ModulesToSave = ["ln_f"] }, name);
        using (torch.no_grad())
        {
            foreach (var (_, p) in peft.TrainableParameters()) p.add_(0.1);
        }
        var expected = Logits(peft);
        peft.SavePretrained(scratch.Path);
        var directory = Path.Combine(scratch.Path, name);
        var keys = SavedTensors(directory).Keys.Order().ToList();
        Assert.Contains("base_model.model.transformer.h.0.attn.c_attn.lora_A.weight", keys);
        Assert.Contains("base_model.model.transformer.h.1.attn.c_attn.lora_B.weight", keys);
        Assert.Contains("base_model.model.transformer.ln_f.weight", keys);
        Assert.Equal(6, keys.Count);

        var loaded = PeftModels.Default.FromPretrained(Load("gpt2-clm", TaskType.CausalLM), directory, adapterName: name);
        Assert.True(MaxDifference(Logits(loaded), expected) < 1e-6);
    }

    [Fact]
    public void SavedConfigNamesTheBaseModelAndItsClass()
    {
        using var scratch = new ScratchDirectory();
        torch.manual_seed(1);
        PeftModels.Default.GetPeftModel(Load("gpt2-clm", TaskType.CausalLM), Lora(null)).SavePretrained(scratch.Path);
        var config = ReadConfig(scratch.Path);
        Assert.Equal(Model("gpt2-clm"), config["base_model_name_or_path"]!.GetValue<string>());
        Assert.True(config.ContainsKey("revision"));
        Assert.Equal("GPT2LMHeadModel", config["auto_mapping"]!["base_model_class"]!.GetValue<string>());
        Assert.Equal("transformers.models.gpt2.modeling_gpt2", config["auto_mapping"]!["parent_library"]!.GetValue<string>());

        using var withTask = new ScratchDirectory();
        PeftModels.Default.GetPeftModel(Load("gpt2-clm", TaskType.CausalLM), Lora()).SavePretrained(withTask.Path);
        Assert.Null(ReadConfig(withTask.Path)["auto_mapping"]);
    }

    [Fact]
    public void NameOrPathFromConfigJsonWins()
    {
        using var scratch = new ScratchDirectory();
        foreach (var file in Directory.GetFiles(Model("gpt2-clm"))) File.Copy(file, scratch.File(Path.GetFileName(file)));
        var json = JsonNode.Parse(File.ReadAllText(scratch.File("config.json")))!.AsObject();
        json["_name_or_path"] = "openai-community/gpt2";
        File.WriteAllText(scratch.File("config.json"), json.ToJsonString());
        Assert.Equal("openai-community/gpt2", PeftModels.Default.LoadPretrained(scratch.Path, TaskType.CausalLM).NameOrPath);
    }

    [Fact]
    public void IA3ConfigHasOnlyTheReferenceIA3Fields()
    {
        var config = new IA3Config
        {
            TaskType = TaskType.CausalLM,
            TargetModules = TargetModules.FromNames(["c_attn", "mlp.c_proj"]),
            FeedforwardModules = TargetModules.FromNames(["mlp.c_proj"]),
        };
        var keys = JsonNode.Parse(PeftJson.Serialize(config))!.AsObject().Select(p => p.Key).Order().ToArray();
        Assert.Equal(
            ["auto_mapping", "base_model_name_or_path", "exclude_modules", "fan_in_fan_out", "feedforward_modules", "inference_mode",
             "init_ia3_weights", "modules_to_save", "peft_type", "peft_version", "revision", "target_modules", "task_type"],
            keys);
    }
}
