using Peft.Methods.Lora;
using Peft.Plugins;
using Peft.Tuners;
using TorchSharp;
using static Peft.Tests.Correctness.TinyFixtures;

namespace Peft.Tests.Correctness;

/// <summary>Merging as the reference does it: unmerge before a disabled forward or an adapter switch, lora_bias, fan_in_fan_out.</summary>
public class MergeSemanticsTests
{
    private static LoraConfig Random(params string[] targets) => new()
    {
        TaskType = TaskType.CausalLM,
        TargetModules = TargetModules.FromNames(targets),
        R = 4,
        LoraAlpha = 8,
        InitLoraWeights = System.Text.Json.JsonSerializer.SerializeToElement(false),
    };

    [Fact]
    public void DisabledForwardOnAMergedModelIsTheBaseModel()
    {
        using var scope = torch.NewDisposeScope();
        var model = Load("gpt2-clm", TaskType.CausalLM);
        var baseLogits = Logits(model);
        torch.manual_seed(1);
        var peft = PeftModels.Default.GetPeftModel(model, Random("c_attn", "c_fc"));
        var adapted = Logits(peft);
        Assert.True(MaxDifference(adapted, baseLogits) > 1e-2, "the random adapter should change the outputs");
        peft.Merge();
        using var warnings = new CapturedWarnings();
        using (peft.DisableAdapter())
        {
            Assert.True(MaxDifference(Logits(peft), baseLogits) < 1e-5, "disabled after merge must be the base model");
        }
        Assert.True(warnings.Any("unmerging"), string.Join(" | ", warnings.Messages));
        Assert.True(MaxDifference(Logits(peft), adapted) < 1e-5, "enabled again (unmerged) it is the adapted model");
    }

    [Fact]
    public void SetAdapterOnAMergedModelUnmergesFirst()
    {
        using var scope = torch.NewDisposeScope();
        var model = Load("gpt2-clm", TaskType.CausalLM);
        torch.manual_seed(1);
        var peft = PeftModels.Default.GetPeftModel(model, Random("c_attn"));
        torch.manual_seed(2);
        peft.AddAdapter("other", Random("c_attn"));
        peft.SetAdapter("other");
        var otherAlone = Logits(peft);
        peft.SetAdapter("default");
        peft.Merge();
        using var warnings = new CapturedWarnings();
        peft.SetAdapter("other");
        Assert.True(MaxDifference(Logits(peft), otherAlone) < 1e-5, "the other adapter alone, not base + both");
        Assert.True(warnings.Any("Unmerging the model first"));
    }

    [Fact]
    public void LoraBiasIsMergedIntoTheBaseBias()
    {
        using var scope = torch.NewDisposeScope();
        var model = Load("gpt2-clm", TaskType.CausalLM);
        torch.manual_seed(1);
        var peft = PeftModels.Default.GetPeftModel(model, Random("c_attn") with { LoraBias = true });
        using (torch.no_grad())
        {
            foreach (var (_, p) in peft.TrainableParameters().Where(p => p.Name.EndsWith("lora_B.default.bias", StringComparison.Ordinal))) p.normal_();
        }
        var adapted = Logits(peft);
        peft.Merge();
        Assert.True(MaxDifference(Logits(peft), adapted) < 1e-4, "merged = adapted, bias included");
        var merged = peft.MergeAndUnload();
        Assert.True(MaxDifference(Logits(merged), adapted) < 1e-4);
    }

    [Fact]
    public void LoraBiasOnALayerWithoutBiasCannotBeMerged()
    {
        using var scope = torch.NewDisposeScope();
        var model = Load("llama-clm", TaskType.CausalLM);
        torch.manual_seed(1);
        var peft = PeftModels.Default.GetPeftModel(model, Random("q_proj", "v_proj") with { LoraBias = true });
        var adapted = Logits(peft);
        var error = Assert.Throws<InvalidOperationException>(peft.Merge);
        Assert.Contains("lora_bias", error.Message);
        Assert.Contains("no bias", error.Message);
        Assert.True(MaxDifference(Logits(peft), adapted) < 1e-6, "a refused merge changes nothing");
    }

    [Theory]
    [InlineData("llama-clm", "q_proj", true, "Setting fan_in_fan_out to False")]
    [InlineData("gpt2-clm", "c_attn", false, "Setting fan_in_fan_out to True")]
    public void FanInFanOutFollowsTheLayerKind(string modelName, string target, bool configured, string warning)
    {
        using var scope = torch.NewDisposeScope();
        var model = Load(modelName, TaskType.CausalLM);
        torch.manual_seed(1);
        using var warnings = new CapturedWarnings();
        var peft = PeftModels.Default.GetPeftModel(model, Random(target) with { FanInFanOut = configured });
        Assert.True(warnings.Any(warning), string.Join(" | ", warnings.Messages));
        var adapted = Logits(peft);
        peft.Merge();
        Assert.True(MaxDifference(Logits(peft), adapted) < 1e-4, "the merged update is not transposed");
    }

    [Fact]
    public void PromptLearningAdaptersCannotBeMerged()
    {
        using var scope = torch.NewDisposeScope();
        var model = Load("gpt2-clm", TaskType.CausalLM);
        var peft = PeftModels.Default.GetPeftModel(model, new Peft.Methods.PromptTuning.PromptTuningConfig { TaskType = TaskType.CausalLM, NumVirtualTokens = 2 });
        var error = Assert.Throws<NotSupportedException>(peft.Merge);
        Assert.Contains("PROMPT_TUNING", error.Message);
    }
}
