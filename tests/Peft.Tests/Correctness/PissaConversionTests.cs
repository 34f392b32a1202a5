using System.Text.Json;
using System.Text.Json.Nodes;
using Peft.Methods.Lora;
using Peft.Tests.Checkpoints;
using Peft.Tuners;
using TorchSharp;
using static Peft.Tests.Correctness.TinyFixtures;
using static TorchSharp.torch;

namespace Peft.Tests.Correctness;

/// <summary>
/// save_pretrained(path_initial_model_for_weight_conversion): a trained PiSSA/OLoRA adapter is written as a plain LoRA
/// adapter of twice the rank that gives the trained model's outputs on the unmodified base model.
/// </summary>
public class PissaConversionTests
{
    private static LoraConfig Config(string model, string init, bool rsLora = false) => new()
    {
        TaskType = TaskType.CausalLM,
        TargetModules = TargetModules.FromNames(model == "gpt2-clm" ? ["c_attn", "c_proj"] : ["q_proj", "v_proj", "down_proj"]),
        R = 4,
        LoraAlpha = 8,
        UseRsLora = rsLora,
        InitLoraWeights = JsonSerializer.SerializeToElement(init),
    };

    /// <summary>Stands for training: every adapter factor moves by a random amount.</summary>
    private static void Perturb(PeftModel peft)
    {
        using var noGrad = torch.no_grad();
        foreach (var (_, parameter) in peft.TrainableParameters()) parameter.add_(torch.randn_like(parameter) * 0.05);
    }

    [Theory]
    [InlineData("llama-clm", "pissa", false)]
    [InlineData("llama-clm", "olora", false)]
    [InlineData("gpt2-clm", "pissa_niter_2", false)]
    [InlineData("llama-clm", "pissa", true)]
    public void TheConvertedAdapterGivesTheTrainedOutputsOnTheUnmodifiedBase(string modelName, string init, bool rsLora)
    {
        using var scope = torch.NewDisposeScope();
        using var scratch = new ScratchDirectory();
        var initialDirectory = scratch.File("initial");
        var convertedDirectory = scratch.File("converted");
        torch.manual_seed(1);
        var peft = PeftModels.Default.GetPeftModel(Load(modelName, TaskType.CausalLM), Config(modelName, init, rsLora));
        peft.SavePretrained(initialDirectory);
        Perturb(peft);
        var trained = Logits(peft);

        peft.SavePretrained(convertedDirectory, initialAdapterDirectory: initialDirectory);

        var converted = PeftModels.Default.FromPretrained(Load(modelName, TaskType.CausalLM), convertedDirectory);
        var difference = MaxDifference(Logits(converted), trained);
        Assert.True(difference < 1e-4 * Math.Max(1, trained.abs().max().item<float>()), $"{difference}");
        var plain = Logits(Load(modelName, TaskType.CausalLM));
        Assert.True(MaxDifference(trained, plain) > 1e-3, "the perturbation moved the outputs");

        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(convertedDirectory, "adapter_config.json")))!;
        Assert.Equal(8, config["r"]!.GetValue<int>());
        Assert.Equal(rsLora ? 8 * Math.Sqrt(2) : 16, config["lora_alpha"]!.GetValue<double>(), 12);
        Assert.True(config["init_lora_weights"]!.GetValue<bool>());
        // The initial folder now loads without decomposing the base again, as the reference leaves it.
        var initialConfig = JsonNode.Parse(File.ReadAllText(Path.Combine(initialDirectory, "adapter_config.json")))!;
        Assert.True(initialConfig["init_lora_weights"]!.GetValue<bool>());
        Assert.Equal(4, initialConfig["r"]!.GetValue<int>());
    }

    [Fact]
    public void AnInitialAdapterOfAnotherRankOrMethodIsRefusedNamingTheFile()
    {
        using var scope = torch.NewDisposeScope();
        using var scratch = new ScratchDirectory();
        var other = scratch.File("other");
        PeftModels.Default.GetPeftModel(Load("llama-clm", TaskType.CausalLM), Config("llama-clm", "pissa") with { R = 2 }).SavePretrained(other);
        var peft = PeftModels.Default.GetPeftModel(Load("llama-clm", TaskType.CausalLM), Config("llama-clm", "pissa"));
        var error = Assert.Throws<PeftConfigException>(() => peft.SavePretrained(scratch.File("out"), initialAdapterDirectory: other));
        Assert.Contains(Path.Combine(other, "adapter_config.json"), error.Message, StringComparison.Ordinal);
        Assert.Contains("r = 2", error.Message, StringComparison.Ordinal);
        Assert.False(Directory.Exists(scratch.File("out")), "nothing was written");

        var ia3 = PeftModels.Default.FromPretrained(Load("llama-clm", TaskType.CausalLM), Fixtures.Path("cases", "llama-clm-ia3", "adapter"));
        Assert.Throws<NotSupportedException>(() => ia3.SavePretrained(scratch.File("ia3"), initialAdapterDirectory: other));
    }

    [Fact]
    public void RsLoraWithARankPatternCannotBeConvertedAsInTheReference()
    {
        using var scope = torch.NewDisposeScope();
        using var scratch = new ScratchDirectory();
        var initial = scratch.File("initial");
        var config = Config("llama-clm", "pissa", rsLora: true) with { RankPattern = new Dictionary<string, int> { ["q_proj"] = 4 } };
        var peft = PeftModels.Default.GetPeftModel(Load("llama-clm", TaskType.CausalLM), config);
        peft.SavePretrained(initial);
        var error = Assert.Throws<PeftConfigException>(() => peft.SavePretrained(scratch.File("out"), initialAdapterDirectory: initial));
        Assert.Contains("use_rslora", error.Message, StringComparison.Ordinal);
    }
}
