using Peft.Layers;
using Peft.Methods.Lora;
using Peft.Modeling;
using Peft.Tests.PromptLearning;
using Peft.Tuners;
using TorchSharp;
using static TorchSharp.torch;

namespace Peft.Tests.Methods;

/// <summary>DoRA (use_dora in LoraConfig): magnitude, detached norm, merge, saved keys.</summary>
public class DoraTests
{
    [Fact]
    public void MagnitudeStartsAtTheRowNormsOfTheWeightAndTheOutputsAreUnchanged()
    {
        using var scope = torch.NewDisposeScope();
        var model = TinyModels.Gpt2(TaskType.CausalLM);
        var ids = TinyModels.Ids([3, 5, 7, 2]);
        var before = model.call(new ModelInputs { InputIds = ids }).Logits;
        var conv = (Conv1D)model.named_modules().Single(m => m.name.EndsWith("h.0.attn.c_attn", StringComparison.Ordinal)).module;
        var expectedNorm = conv.weight.detach().pow(2).sum([0]).sqrt();   // Conv1D stores (in, out): one norm per output
        var peft = TinyModels.Peft(model, Config(random: false));
        var magnitude = Assert.Single(peft.TrainableParameters(), p => p.Name.EndsWith("h.0.attn.c_attn.lora_magnitude_vector.default.weight", StringComparison.Ordinal));
        TinyModels.AssertClose(expectedNorm, magnitude.Parameter, 1e-6);
        TinyModels.AssertClose(before, peft.call(new ModelInputs { InputIds = ids }).Logits);
    }

    [Fact]
    public void LinearLayerComputesTheDecomposedWeightWithTheNormDetached()
    {
        using var scope = torch.NewDisposeScope();
        torch.manual_seed(5);
        var linear = nn.Linear(4, 3);
        var layer = new LoraLayer(linear, fanInFanOut: false);
        layer.AddAdapter("default", rank: 2, scaling: 1.5, dropout: 0, loraBias: false, LoraInit.Random, useDora: true);
        layer.ActiveAdapters = ["default"];
        var parameters = layer.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        var (a, b, m) = (parameters["lora_A.default.weight"], parameters["lora_B.default.weight"], parameters["lora_magnitude_vector.default.weight"]);
        using (torch.no_grad()) m.mul_(torch.tensor(new float[] { 0.5f, 2f, 1.25f }));
        var x = torch.randn(5, 4);

        layer.call(x).sum().backward();
        var (gradA, gradB, gradM) = (a.grad!.clone(), b.grad!.clone(), m.grad!.clone());
        foreach (var p in parameters.Values) p.grad = null;

        // DoRA by hand: m / ‖W + s·BA‖ (treated as a constant) · (W + s·BA) x + bias.
        var adapted = linear.weight!.detach() + torch.matmul(b, a) * 1.5;
        var norm = adapted.detach().pow(2).sum([1]).sqrt();
        var expected = torch.matmul(x, (adapted * (m / norm).unsqueeze(1)).T) + linear.bias!.detach();
        expected.sum().backward();
        TinyModels.AssertClose(expected, layer.call(x), 1e-5);
        TinyModels.AssertClose(a.grad!, gradA, 1e-5);
        TinyModels.AssertClose(b.grad!, gradB, 1e-5);
        TinyModels.AssertClose(m.grad!, gradM, 1e-5);
    }

    [Fact]
    public void MergedOutputsEqualTheAdaptedOnesAndUnmergeRestoresTheWeights()
    {
        using var scope = torch.NewDisposeScope();
        var model = TinyModels.Gpt2(TaskType.CausalLM);
        var ids = TinyModels.Ids([3, 5, 7, 2], [1, 4, 9, 6]);
        var original = model.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.clone());
        torch.manual_seed(4);
        var peft = TinyModels.Peft(model, Config(random: true));
        var adapted = peft.call(new ModelInputs { InputIds = ids }).Logits;
        peft.Merge();
        TinyModels.AssertClose(adapted, peft.call(new ModelInputs { InputIds = ids }).Logits, 1e-4);
        peft.Unmerge();
        var conv = (Conv1D)((IAdapterLayer)model.named_modules().Single(m => m.name.EndsWith("h.0.attn.c_attn", StringComparison.Ordinal)).module).BaseLayer;
        TinyModels.AssertClose(original["transformer.h.0.attn.c_attn.weight"], conv.weight, 1e-5);
        TinyModels.AssertClose(adapted, peft.call(new ModelInputs { InputIds = ids }).Logits, 1e-4);
    }

    [Fact]
    public void SavesTheMagnitudeUnderTheReferenceKeyAndLoadsItBack()
    {
        using var scope = torch.NewDisposeScope();
        var ids = TinyModels.Ids([3, 5, 7, 2]);
        torch.manual_seed(4);
        var peft = TinyModels.Peft(TinyModels.Gpt2(TaskType.CausalLM), Config(random: true));
        var adapted = peft.call(new ModelInputs { InputIds = ids }).Logits;
        var keys = peft.ActiveAdapter.GetStateDict().Keys.ToList();
        Assert.Contains("base_model.model.transformer.h.0.attn.c_attn.lora_magnitude_vector", keys);
        Assert.DoesNotContain(keys, k => k.EndsWith(".weight", StringComparison.Ordinal) && k.Contains("magnitude", StringComparison.Ordinal));

        var directory = Path.Combine(Path.GetTempPath(), "dora-" + Guid.NewGuid().ToString("N"));
        try
        {
            peft.SavePretrained(directory);
            var loaded = PeftModels.Default.FromPretrained(TinyModels.Gpt2(TaskType.CausalLM), directory);
            TinyModels.AssertClose(adapted, loaded.call(new ModelInputs { InputIds = ids }).Logits);
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }

    [Fact]
    public void DoraOnAnEmbeddingIsRefusedNamingTheOption()
    {
        var config = new LoraConfig { TaskType = TaskType.CausalLM, UseDora = true, TargetModules = TargetModules.FromNames(["wte"]) };
        var error = Assert.Throws<PeftConfigException>(() => TinyModels.Peft(TinyModels.Gpt2(TaskType.CausalLM), config));
        Assert.Contains("use_dora", error.Message);
    }

    [Fact]
    public void DoraWithLoraBiasIsRefused() =>
        Assert.Contains("lora_bias", Assert.Throws<PeftConfigException>(new LoraConfig { UseDora = true, LoraBias = true }.Validate).Message);

    private static LoraConfig Config(bool random) => new()
    {
        TaskType = TaskType.CausalLM,
        R = 2,
        LoraAlpha = 4,
        UseDora = true,
        FanInFanOut = true,
        TargetModules = TargetModules.FromNames(["c_attn", "c_fc"]),
        InitLoraWeights = System.Text.Json.JsonSerializer.SerializeToElement(!random),
    };
}
