using Peft.Methods.IA3;
using Peft.Modeling;
using Peft.Tests.PromptLearning;
using Peft.Tuners;
using TorchSharp;

namespace Peft.Tests.Methods;

/// <summary>The IA3 method plugin: config validation, shapes, and multiplicative merge.</summary>
public class IA3Tests
{
    [Fact]
    public void FeedforwardModulesMustBeASubsetOfTargetModules()
    {
        var config = new IA3Config
        {
            TaskType = TaskType.CausalLM,
            TargetModules = TargetModules.FromNames(["c_attn"]),
            FeedforwardModules = TargetModules.FromNames(["mlp.c_proj"]),
        };
        var error = Assert.Throws<PeftConfigException>(config.Validate);
        Assert.Contains("feedforward_modules", error.Message);
        Assert.Contains("target_modules", error.Message);
        Assert.Contains("mlp.c_proj", error.Message);
    }

    [Fact]
    public void VectorsHaveTheReferenceShapesAndOnesInitIsTheIdentity()
    {
        using var scope = torch.NewDisposeScope();
        var model = TinyModels.Gpt2(TaskType.CausalLM);
        var ids = TinyModels.Ids([3, 5, 7, 2], [1, 4, 9, 6]);
        var before = model.call(new ModelInputs { InputIds = ids }).Logits;
        var peft = TinyModels.Peft(model, Config(init: true));
        var names = peft.TrainableParameters().ToDictionary(p => p.Name, p => p.Parameter.shape);
        var attn = Assert.Single(names, p => p.Key.EndsWith("h.0.attn.c_attn.ia3_l.default", StringComparison.Ordinal));
        Assert.Equal([24L, 1], attn.Value); // output scaling: (out_features, 1)
        var mlp = Assert.Single(names, p => p.Key.EndsWith("h.0.mlp.c_proj.ia3_l.default", StringComparison.Ordinal));
        Assert.Equal([1L, 32], mlp.Value); // feed-forward: (1, in_features)
        TinyModels.AssertClose(before, peft.call(new ModelInputs { InputIds = ids }).Logits);
    }

    [Fact]
    public void MergeThenUnmergeRestoresTheOutputs()
    {
        using var scope = torch.NewDisposeScope();
        var model = TinyModels.Gpt2(TaskType.CausalLM);
        var ids = TinyModels.Ids([3, 5, 7, 2], [1, 4, 9, 6]);
        var baseLogits = model.call(new ModelInputs { InputIds = ids }).Logits;
        torch.manual_seed(3);
        var peft = TinyModels.Peft(model, Config(init: false));
        var adapted = peft.call(new ModelInputs { InputIds = ids }).Logits;
        Assert.True((adapted - baseLogits).abs().max().item<float>() > 1e-3, "random vectors should change the outputs");

        peft.Merge();
        TinyModels.AssertClose(adapted, peft.call(new ModelInputs { InputIds = ids }).Logits, 1e-4);
        peft.Unmerge();
        TinyModels.AssertClose(adapted, peft.call(new ModelInputs { InputIds = ids }).Logits, 1e-4);
        using (peft.DisableAdapter())
        {
            TinyModels.AssertClose(baseLogits, peft.call(new ModelInputs { InputIds = ids }).Logits, 1e-4);
        }
    }

    private static IA3Config Config(bool init) => new()
    {
        TaskType = TaskType.CausalLM,
        TargetModules = TargetModules.FromNames(["c_attn", "mlp.c_proj"]),
        FeedforwardModules = TargetModules.FromNames(["mlp.c_proj"]),
        FanInFanOut = true,
        InitIA3Weights = init,
    };
}
