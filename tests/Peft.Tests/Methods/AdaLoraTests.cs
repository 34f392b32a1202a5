using System.Text.Json;
using Peft.Methods.AdaLora;
using Peft.Modeling;
using Peft.Tests.PromptLearning;
using Peft.Tuners;
using TorchSharp;
using static TorchSharp.torch;

namespace Peft.Tests.Methods;

/// <summary>AdaLoRA: the budget schedule, masking to it step by step, the regulariser, rank_pattern save/load.</summary>
public class AdaLoraTests
{
    private static AdaLoraConfig Config(double orthRegWeight = 0.5) => new()
    {
        TaskType = TaskType.CausalLM,
        InitR = 4,
        TargetR = 2,
        TInit = 2,
        TFinal = 3,
        DeltaT = 2,
        TotalStep = 12,
        LoraAlpha = 8,
        InitLoraWeights = false,
        OrthRegWeight = orthRegWeight,
        TargetModules = TargetModules.FromNames(["c_attn", "c_fc"]),
    };

    /// <summary>The reference's budget_schedule, written out: (budget, whether the step masks).</summary>
    private static (int, bool) ExpectedBudget(int step, int initial, int target, AdaLoraConfig c)
    {
        if (step <= c.TInit) return (initial, false);
        if (step > c.TotalStep!.Value - c.TFinal) return (target, true);
        var m = 1 - (double)(step - c.TInit) / (c.TotalStep.Value - c.TFinal - c.TInit);
        return ((int)((initial - target) * m * m * m + target), step % c.DeltaT == 0);
    }

    [Fact]
    public void TrainingMasksTheTripletsToTheScheduledBudgetStepByStep()
    {
        using var scope = torch.NewDisposeScope();
        torch.manual_seed(7);
        var peft = TinyModels.Peft(TinyModels.Gpt2(TaskType.CausalLM), Config());
        var adapter = Assert.IsType<AdaLoraAdapter>(peft.ActiveAdapter);
        var config = (AdaLoraConfig)peft.PeftConfig;
        var layers = ((TunerAdapter)adapter).Layers.Select(l => (AdaLoraLayer)l.Layer).ToList();
        Assert.Equal(4, layers.Count);                                  // c_attn and c_fc in 2 blocks
        Assert.Equal(16, adapter.Allocator.InitialBudget);              // 4 layers × init_r 4
        Assert.Equal(8, adapter.Allocator.TargetBudget);                // 4 layers × target_r 2

        var ids = TinyModels.Ids([3, 5, 7, 2, 9, 1], [1, 4, 9, 6, 2, 8]);
        var parameters = peft.TrainableParameters().Select(p => p.Parameter).ToList();
        using var optimizer = torch.optim.AdamW(parameters, lr: 1e-2);
        peft.train();
        var lastBudget = 16;
        for (var step = 0; step < config.TotalStep!.Value + 2; step++)
        {
            optimizer.zero_grad();
            peft.call(new ModelInputs { InputIds = ids, Labels = ids }).Loss!.backward();
            optimizer.step();
            peft.ActiveAdapter.AfterOptimizerStep(step);

            var (budget, masks) = ExpectedBudget(step, 16, 8, config);
            Assert.Equal((budget, masks), adapter.Allocator.BudgetSchedule(step));
            var kept = layers.Sum(l => (int)l.E("default").ne(0).sum().item<long>());
            if (masks || step >= config.FinalStep) lastBudget = Math.Min(budget, 16);
            if (masks || step >= config.FinalStep) Assert.Equal(lastBudget, kept);
        }
        var pattern = ((AdaLoraConfig)peft.PeftConfig).RankPattern!;
        Assert.Equal(8, pattern.Values.Sum(p => p.Count(k => k)));
        Assert.Contains("transformer.h.0.attn.c_attn.lora_E", pattern.Keys);
    }

    [Fact]
    public void TheOrthogonalityRegulariserIsAddedToTheLoss()
    {
        using var scope = torch.NewDisposeScope();
        var ids = TinyModels.Ids([3, 5, 7, 2]);
        torch.manual_seed(3);
        var with = TinyModels.Peft(TinyModels.Gpt2(TaskType.CausalLM), Config(0.5));
        torch.manual_seed(3);
        var without = TinyModels.Peft(TinyModels.Gpt2(TaskType.CausalLM), Config(0));
        var expected = torch.zeros(1);
        var count = 0;
        foreach (var (_, layer) in ((TunerAdapter)with.ActiveAdapter).Layers)
        {
            var svd = (AdaLoraLayer)layer;
            var (a, b) = (svd.A("default").detach(), svd.B("default").detach());
            expected += (torch.matmul(a, a.T) - torch.eye(4)).pow(2).sum().sqrt();
            expected += (torch.matmul(b.T, b) - torch.eye(4)).pow(2).sum().sqrt();
            count += 2;
        }
        var difference = with.call(new ModelInputs { InputIds = ids, Labels = ids }).Loss! - without.call(new ModelInputs { InputIds = ids, Labels = ids }).Loss!;
        TinyModels.AssertClose(expected / count * 0.5, difference.reshape(1), 1e-4);
    }

    [Fact]
    public void SavedAdapterKeepsTheAllocatedTripletsAndLoadsBackResized()
    {
        using var scope = torch.NewDisposeScope();
        torch.manual_seed(7);
        var peft = TinyModels.Peft(TinyModels.Gpt2(TaskType.CausalLM), Config());
        var ids = TinyModels.Ids([3, 5, 7, 2, 9, 1]);
        var parameters = peft.TrainableParameters().Select(p => p.Parameter).ToList();
        using var optimizer = torch.optim.AdamW(parameters, lr: 1e-2);
        peft.train();
        for (var step = 0; step <= ((AdaLoraConfig)peft.PeftConfig).FinalStep; step++)
        {
            optimizer.zero_grad();
            peft.call(new ModelInputs { InputIds = ids, Labels = ids }).Loss!.backward();
            optimizer.step();
            peft.ActiveAdapter.AfterOptimizerStep(step);
        }
        peft.eval();
        var adapted = peft.call(new ModelInputs { InputIds = ids }).Logits;

        var directory = Path.Combine(Path.GetTempPath(), "adalora-" + Guid.NewGuid().ToString("N"));
        try
        {
            peft.SavePretrained(directory);
            using var saved = JsonDocument.Parse(File.ReadAllText(Path.Combine(directory, "adapter_config.json")));
            var pattern = saved.RootElement.GetProperty("rank_pattern");
            var kept = pattern.GetProperty("transformer.h.0.attn.c_attn.lora_E").EnumerateArray().Count(e => e.GetBoolean());
            var header = Peft.Checkpoints.SafeTensors.ReadHeader(Path.Combine(directory, "adapter_model.safetensors")).Tensors;
            Assert.Equal([kept, 8L], header["base_model.model.transformer.h.0.attn.c_attn.lora_A"].Shape);
            Assert.Equal([24L, kept], header["base_model.model.transformer.h.0.attn.c_attn.lora_B"].Shape);

            var loaded = PeftModels.Default.FromPretrained(TinyModels.Gpt2(TaskType.CausalLM), directory);
            TinyModels.AssertClose(adapted, loaded.call(new ModelInputs { InputIds = ids }).Logits, 1e-5);
            var (trainable, _) = PeftModels.Default.FromPretrained(TinyModels.Gpt2(TaskType.CausalLM), directory, isTrainable: true).GetNbTrainableParameters();
            var expected = pattern.EnumerateObject().Sum(p => p.Value.EnumerateArray().Count(e => e.GetBoolean()) * (p.Name.Contains("c_attn") ? 8 + 24 + 1 : 8 + 32 + 1));
            Assert.Equal(expected, trainable);
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }

    [Fact]
    public void ScheduleWithoutABudgetingPhaseIsRefused()
    {
        var error = Assert.Throws<PeftConfigException>((Config() with { TInit = 9 }).Validate);
        Assert.Contains("tinit", error.Message);
        Assert.Contains("total_step", Assert.Throws<PeftConfigException>((Config() with { TotalStep = null }).Validate).Message);
    }
}
