using Peft.Methods.Lora;
using Peft.Plugins;
using Peft.Tuners;
using TorchSharp;
using static Peft.Tests.Correctness.TinyFixtures;

namespace Peft.Tests.Runtime;

/// <summary>The runtime flow without doubling back: the loaded model carries its architecture, and an attached adapter stays inactive until asked.</summary>
public class AdapterAttachTests
{
    private static LoraConfig Random() => new()
    {
        TaskType = TaskType.CausalLM,
        TargetModules = new[] { "c_attn" },
        R = 4,
        LoraAlpha = 8,
        InitLoraWeights = LoraInit.Random,
    };

    [Fact]
    public void TheLoadedModelCarriesTheArchitectureThatBuiltIt()
    {
        using var model = Load("gpt2-clm", TaskType.CausalLM);
        Assert.Same(PeftRegistry.Default.Architecture("gpt2"), model.Architecture);
        Assert.Same(model.Architecture, PeftModels.Default.GetPeftModel(model, Random()).Architecture);
    }

    [Fact]
    public void AnAttachedAdapterIsInactiveUntilActivated()
    {
        using var scope = torch.NewDisposeScope();
        var model = Load("gpt2-clm", TaskType.CausalLM);
        var baseLogits = Logits(model);

        torch.manual_seed(1);
        var adapter = PeftRegistry.Default.Method(PeftType.Lora).Attach(new AdapterTarget(model, model.Architecture!), Random(), "direct");
        Assert.True(MaxDifference(Logits(model), baseLogits) < 1e-6, "attached, not active: the base model");
        adapter.SetActive(true);
        Assert.True(MaxDifference(Logits(model), baseLogits) > 1e-3, "activated: the random adapter changes the outputs");
        adapter.SetActive(false);
        Assert.True(MaxDifference(Logits(model), baseLogits) < 1e-6, "deactivated again");
    }

    [Fact]
    public void AddAdapterLeavesTheActiveAdapterInCharge()
    {
        using var scope = torch.NewDisposeScope();
        torch.manual_seed(1);
        var peft = PeftModels.Default.GetPeftModel(Load("gpt2-clm", TaskType.CausalLM), Random());
        var first = Logits(peft);
        torch.manual_seed(2);
        peft.AddAdapter("second", Random());
        Assert.Equal("default", peft.ActiveAdapterName);
        Assert.True(MaxDifference(Logits(peft), first) < 1e-6, "the added adapter takes no part until SetAdapter");
        peft.SetAdapter("second");
        Assert.True(MaxDifference(Logits(peft), first) > 1e-3);
    }
}
