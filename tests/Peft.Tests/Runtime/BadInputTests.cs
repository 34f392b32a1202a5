using Peft.Modeling;
using Peft.Checkpoints;
using Peft.Methods.Lora;
using Peft.Plugins;
using Peft.Tests.Checkpoints;
using Peft.Tuners;

namespace Peft.Tests.Runtime;

/// <summary>Everything a user can get wrong fails early, with a message naming the file, key or module.</summary>
public class BadInputTests
{
    private static string Gpt2 => Fixtures.Path("models", "gpt2-clm");

    [Fact]
    public void ConfigWithoutModelTypeNamesTheFileAndKey()
    {
        using var scratch = new ScratchDirectory();
        File.WriteAllText(scratch.File("config.json"), """{ "n_embd": 32 }""");
        var error = Assert.Throws<ModelConfigException>(() => PeftModels.Default.LoadPretrained(scratch.Path, TaskType.CausalLM));
        Assert.Contains("config.json", error.Message);
        Assert.Contains("model_type", error.Message);
    }

    [Fact]
    public void ModelDirectoryWithoutConfigIsNamed()
    {
        using var scratch = new ScratchDirectory();
        var error = Assert.Throws<ModelConfigException>(() => PeftModels.Default.LoadPretrained(scratch.Path, TaskType.CausalLM));
        Assert.Contains(Path.Combine(scratch.Path, "config.json"), error.Message);
        Assert.Contains("not found", error.Message);
    }

    [Fact]
    public void UnknownModelTypeListsTheRegisteredOnes()
    {
        using var scratch = new ScratchDirectory();
        File.WriteAllText(scratch.File("config.json"), """{ "model_type": "no-such-model" }""");
        var error = Assert.Throws<ModelConfigException>(() => PeftModels.Default.LoadPretrained(scratch.Path, TaskType.CausalLM));
        Assert.Contains("no-such-model", error.Message);
        Assert.Contains("gpt2", error.Message);
    }

    [Fact]
    public void MissingRequiredConfigKeyIsNamed()
    {
        using var scratch = new ScratchDirectory();
        var json = File.ReadAllText(Path.Combine(Gpt2, "config.json")).Replace("\"n_head\": 4,", "");
        File.WriteAllText(scratch.File("config.json"), json);
        var error = Assert.Throws<ModelConfigException>(() => PeftModels.Default.ReadConfig(scratch.Path));
        Assert.Contains("n_head", error.Message);
        Assert.Contains("config.json", error.Message);
    }

    [Fact]
    public void MissingWeightsFileIsNamed()
    {
        using var scratch = new ScratchDirectory();
        File.Copy(Path.Combine(Gpt2, "config.json"), scratch.File("config.json"));
        var error = Assert.Throws<CheckpointException>(() => PeftModels.Default.LoadPretrained(scratch.Path, TaskType.CausalLM));
        Assert.Contains(scratch.Path, error.Message);
    }

    [Fact]
    public void TruncatedWeightsFileIsNamed()
    {
        using var scratch = new ScratchDirectory();
        File.Copy(Path.Combine(Gpt2, "config.json"), scratch.File("config.json"));
        var bytes = File.ReadAllBytes(Path.Combine(Gpt2, "model.safetensors"));
        File.WriteAllBytes(scratch.File("model.safetensors"), bytes[..(bytes.Length / 2)]);
        var error = Assert.Throws<CheckpointException>(() => PeftModels.Default.LoadPretrained(scratch.Path, TaskType.CausalLM));
        Assert.Contains("model.safetensors", error.Message);
    }

    [Fact]
    public void WeightMissingFromCheckpointIsNamed()
    {
        using var scratch = new ScratchDirectory();
        File.Copy(Path.Combine(Gpt2, "config.json"), scratch.File("config.json"));
        var weights = SafeTensors.Load(Path.Combine(Gpt2, "model.safetensors"));
        weights.Remove("transformer.h.1.mlp.c_fc.weight");
        SafeTensors.Save(scratch.File("model.safetensors"), weights);
        var error = Assert.Throws<CheckpointException>(() => PeftModels.Default.LoadPretrained(scratch.Path, TaskType.CausalLM));
        Assert.Contains("transformer.h.1.mlp.c_fc.weight", error.Message);
    }

    [Fact]
    public void TargetModulesMatchingNothingNamesTheTargetsAndTheCandidates()
    {
        var model = PeftModels.Default.LoadPretrained(Gpt2, TaskType.CausalLM);
        var config = new LoraConfig { TargetModules = TargetModules.FromNames(["q_proj"]) };
        var error = Assert.Throws<PeftConfigException>(() => PeftModels.Default.GetPeftModel(model, config));
        Assert.Contains("q_proj", error.Message);
        Assert.Contains("transformer.h.0.attn.c_attn", error.Message);
    }

    [Fact]
    public void AdapterWhoseKeysDoNotFitTheModelNamesTheKey()
    {
        // An adapter trained on a model with other target modules: c_attn here, c_fc in the file.
        using var scratch = new ScratchDirectory();
        var model = PeftModels.Default.LoadPretrained(Gpt2, TaskType.CausalLM);
        var other = PeftModels.Default.GetPeftModel(model, new LoraConfig { R = 2, TargetModules = TargetModules.FromNames(["c_fc"]) });
        other.SavePretrained(scratch.Path);
        var config = File.ReadAllText(scratch.File("adapter_config.json")).Replace("\"c_fc\"", "\"c_attn\"");
        File.WriteAllText(scratch.File("adapter_config.json"), config);

        var fresh = PeftModels.Default.LoadPretrained(Gpt2, TaskType.CausalLM);
        var error = Assert.Throws<InvalidDataException>(() => PeftModels.Default.FromPretrained(fresh, scratch.Path));
        Assert.Contains("adapter_model.safetensors", error.Message);
        Assert.Contains("c_attn.lora_A.weight", error.Message);
    }

    [Fact]
    public void AdapterWithWrongRankNamesTheKeyAndShapes()
    {
        using var scratch = new ScratchDirectory();
        var model = PeftModels.Default.LoadPretrained(Gpt2, TaskType.CausalLM);
        PeftModels.Default.GetPeftModel(model, new LoraConfig { R = 2 }).SavePretrained(scratch.Path);
        File.WriteAllText(scratch.File("adapter_config.json"), File.ReadAllText(scratch.File("adapter_config.json")).Replace("\"r\": 2", "\"r\": 3"));

        var fresh = PeftModels.Default.LoadPretrained(Gpt2, TaskType.CausalLM);
        var error = Assert.Throws<InvalidDataException>(() => PeftModels.Default.FromPretrained(fresh, scratch.Path));
        Assert.Contains("lora_A.weight", error.Message);
        Assert.Contains("shape", error.Message);
    }

    [Fact]
    public void UnknownPeftTypeIsNamed()
    {
        using var scratch = new ScratchDirectory();
        File.WriteAllText(scratch.File("adapter_config.json"), """{ "peft_type": "NOT_A_METHOD" }""");
        var error = Assert.Throws<PeftConfigException>(() => PeftModels.Default.ReadAdapterConfig(scratch.Path));
        Assert.Contains("NOT_A_METHOD", error.Message);
        Assert.Contains("adapter_config.json", error.Message);
    }

    [Fact]
    public void NonPositiveRankIsRefused()
    {
        var model = PeftModels.Default.LoadPretrained(Gpt2, TaskType.CausalLM);
        var error = Assert.Throws<PeftConfigException>(() => PeftModels.Default.GetPeftModel(model, new LoraConfig { R = 0 }));
        Assert.Contains("`r`", error.Message);
    }

    [Fact]
    public void UnsupportedTaskIsRefused()
    {
        var (architecture, config) = PeftModels.Default.ReadConfig(Gpt2);
        Assert.Throws<NotSupportedException>(() => architecture.Build(config, TaskType.Seq2SeqLM));
    }

    [Fact]
    public void SecondPluginForTheSameModelTypeNamesBoth()
    {
        var error = Assert.Throws<InvalidOperationException>(() => new PeftRegistry(
            [new global::Peft.Backbones.Gpt2.Gpt2Architecture(), new ImpostorGpt2()], []));
        Assert.Contains(nameof(ImpostorGpt2), error.Message);
        Assert.Contains(nameof(global::Peft.Backbones.Gpt2.Gpt2Architecture), error.Message);
    }

    private sealed class ImpostorGpt2 : IArchitecture
    {
        public string ModelType => "gpt2";
        public IReadOnlyList<TaskType> SupportedTasks => [];
        public IReadOnlyDictionary<string, IReadOnlyList<string>> DefaultTargets { get; } = new Dictionary<string, IReadOnlyList<string>>();
        public Modeling.ModelConfig ParseConfig(System.Text.Json.JsonElement json, string source) => throw new NotSupportedException();
        public Modeling.PreTrainedModel Build(Modeling.ModelConfig config, TaskType task) => throw new NotSupportedException();
    }
}
