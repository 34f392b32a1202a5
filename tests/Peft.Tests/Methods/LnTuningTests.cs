using Peft.Backbones.Llama;
using Peft.Layers;
using Peft.Methods.LnTuning;
using Peft.Modeling;
using Peft.Tests.PromptLearning;
using Peft.Tuners;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Peft.Tests.Methods;

/// <summary>LN tuning: trainable copies of norm layers, merge by swapping, unload.</summary>
public class LnTuningTests
{
    [Fact]
    public void DefaultTargetsAreTheNormLayersAndOnlyTheirCopiesTrain()
    {
        using var scope = torch.NewDisposeScope();
        var model = TinyModels.Gpt2(TaskType.CausalLM);
        var ids = TinyModels.Ids([3, 5, 7, 2]);
        var before = model.call(new ModelInputs { InputIds = ids }).Logits;
        var peft = TinyModels.Peft(model, new LnTuningConfig { TaskType = TaskType.CausalLM });
        var names = peft.TrainableParameters().Select(p => p.Name).ToList();
        Assert.Equal(2 * (2 * 2) + 2, names.Count);   // ln_1, ln_2 per block (weight, bias) and ln_f
        Assert.All(names, n => Assert.Contains(".ln_tuning_layers.default.", n));
        Assert.Contains(names, n => n.EndsWith("transformer.ln_f.ln_tuning_layers.default.weight", StringComparison.Ordinal));
        TinyModels.AssertClose(before, peft.call(new ModelInputs { InputIds = ids }).Logits);
        Assert.Contains("ln_f", Assert.IsType<LnTuningConfig>(peft.PeftConfig).TargetModules!.Names!);
    }

    [Fact]
    public void MergeUnmergeAndUnloadKeepTheTunedOutputs()
    {
        using var scope = torch.NewDisposeScope();
        var model = TinyModels.Gpt2(TaskType.CausalLM);
        var ids = TinyModels.Ids([3, 5, 7, 2], [1, 4, 9, 6]);
        var baseLogits = model.call(new ModelInputs { InputIds = ids }).Logits;
        var peft = TinyModels.Peft(model, new LnTuningConfig { TaskType = TaskType.CausalLM });
        using (torch.no_grad())
        {
            torch.manual_seed(2);
            foreach (var (_, p) in peft.TrainableParameters()) p.add_(torch.randn_like(p) * 0.3);
        }
        var tuned = peft.call(new ModelInputs { InputIds = ids }).Logits;
        Assert.True((tuned - baseLogits).abs().max().item<float>() > 1e-3);
        using (peft.DisableAdapter()) TinyModels.AssertClose(baseLogits, peft.call(new ModelInputs { InputIds = ids }).Logits);

        peft.Merge();
        TinyModels.AssertClose(tuned, peft.call(new ModelInputs { InputIds = ids }).Logits);
        peft.Unmerge();
        TinyModels.AssertClose(tuned, peft.call(new ModelInputs { InputIds = ids }).Logits);
        using (peft.DisableAdapter()) TinyModels.AssertClose(baseLogits, peft.call(new ModelInputs { InputIds = ids }).Logits);

        var merged = peft.MergeAndUnload();
        Assert.DoesNotContain(merged.modules(), m => m is LnTuningLayer);
        Assert.Contains(merged.named_modules(), m => m.name == "transformer.ln_f" && m.module is LayerNorm);
        TinyModels.AssertClose(tuned, merged.call(new ModelInputs { InputIds = ids }).Logits);
    }

    [Fact]
    public void RmsNormsAreCopiedIndependently()
    {
        using var scope = torch.NewDisposeScope();
        var norm = new LlamaRmsNorm(6, 1e-6);
        using (torch.no_grad()) norm.parameters().Single().copy_(torch.arange(1, 7, dtype: ScalarType.Float32));
        var copy = NormLayers.Copy(norm);
        var x = torch.randn(2, 6);
        TinyModels.AssertClose(norm.call(x), copy.call(x));
        using (torch.no_grad()) copy.parameters().Single().mul_(2);
        Assert.Equal(1f, norm.parameters().Single()[0].item<float>());
        Assert.Equal(new LayerShape(SlotKind.Norm, 6, 6), LayerShape.Of(norm));
    }

    [Fact]
    public void ALinearTargetIsRefusedNamingTheModule()
    {
        var config = new LnTuningConfig { TaskType = TaskType.CausalLM, TargetModules = TargetModules.FromNames(["c_attn"]) };
        var error = Assert.Throws<PeftConfigException>(() => TinyModels.Peft(TinyModels.Gpt2(TaskType.CausalLM), config));
        Assert.Contains("c_attn", error.Message);
    }
}
