using System.Reflection;
using Peft.Methods.IA3;
using Peft.Methods.LnTuning;
using Peft.Modeling;
using Peft.Plugins;
using Peft.Tests.PromptLearning;
using Peft.Tuners;
using TorchSharp;

namespace Peft.Tests.Methods;

/// <summary>Default targets keyed by method: the generated tables and how methods use them.</summary>
public class DefaultTargetsTests
{
    public static TheoryData<string> Architectures() => [.. BuiltIns.Architectures().Select(a => a.ModelType)];

    private static IArchitecture Architecture(string modelType) => BuiltIns.Architectures().Single(a => a.ModelType == modelType);

    [Theory]
    [MemberData(nameof(Architectures))]
    public void TheGeneratedTablesAreTheDeclaredOnes(string modelType)
    {
        var architecture = Architecture(modelType);
        var declared = architecture.GetType().GetCustomAttributes<DefaultTargetsAttribute>().ToDictionary(a => a.Method, a => a.Names);
        Assert.Equal(declared.Keys.Order(), architecture.DefaultTargets.Keys.Order());
        foreach (var (method, names) in declared) Assert.Equal(names, architecture.DefaultTargets[method]);
        // The reference refuses a config whose feed-forward modules are not among its targets.
        if (architecture.DefaultTargets.TryGetValue("IA3_FEEDFORWARD", out var feedforward))
        {
            Assert.All(feedforward, f => Assert.Contains(f, architecture.DefaultTargets["IA3"]));
        }
    }

    [Fact]
    public void TablesFollowTheReference()
    {
        Assert.Equal(["k", "v", "wi_1"], Architecture("mt5").DefaultTargets["IA3"]);
        Assert.Empty(Architecture("mt5").DefaultTargets["IA3_FEEDFORWARD"]);
        Assert.Equal(["q", "k", "v", "o", "wi", "wo"], Architecture("t5").DefaultTargets["ADALORA"]);
        Assert.Equal(["input_layernorm", "post_attention_layernorm", "norm"], Architecture("llama").DefaultTargets["LN_TUNING"]);
        Assert.False(Architecture("layoutlm").DefaultTargets.ContainsKey("IA3"));   // the reference has no entry either
        Assert.All(BuiltIns.Architectures().Where(a => a.ModelType is not ("vit" or "swin" or "segformer" or "resnet")),
            a => Assert.True(a.DefaultTargets.ContainsKey("LORA"), $"{a.ModelType} declares no LoRA defaults"));
    }

    [Fact]
    public void IA3TakesItsTargetsAndFeedForwardModulesFromTheArchitecture()
    {
        using var scope = torch.NewDisposeScope();
        var peft = TinyModels.Peft(TinyModels.Gpt2(TaskType.CausalLM), new IA3Config { TaskType = TaskType.CausalLM });
        var layers = ((TunerAdapter)peft.ActiveAdapter).Layers;
        Assert.Equal(4, layers.Count);
        Assert.All(layers, l => Assert.Equal(l.Path.EndsWith("mlp.c_proj", StringComparison.Ordinal), ((IA3Layer)l.Layer).IsFeedforward));
        var applied = (IA3Config)peft.PeftConfig;
        Assert.Equal(["c_attn", "mlp.c_proj"], applied.TargetModules!.Names!);
        Assert.Equal(["mlp.c_proj"], applied.FeedforwardModules!.Names!);
    }

    [Fact]
    public void GivenTargetsKeepOnlyTheDefaultFeedForwardModulesAmongThem()
    {
        var config = new IA3Config { TaskType = TaskType.CausalLM, TargetModules = TargetModules.FromNames(["c_attn"]) };
        var peft = TinyModels.Peft(TinyModels.Gpt2(TaskType.CausalLM), config);
        Assert.Empty(((IA3Config)peft.PeftConfig).FeedforwardModules!.Names!);
    }

    [Fact]
    public void AMethodWithoutATableForTheArchitectureNamesBoth()
    {
        var model = new Peft.Backbones.LayoutLm.LayoutLmArchitecture();
        var error = Assert.Throws<PeftConfigException>(() => new LnTuningMethod().Attach(
            new AdapterTarget(TinyModels.Gpt2(TaskType.CausalLM), model), new LnTuningConfig { TaskType = TaskType.CausalLM }, "default"));
        Assert.Contains("layoutlm", error.Message);
        Assert.Contains("LN_TUNING", error.Message);
    }
}
