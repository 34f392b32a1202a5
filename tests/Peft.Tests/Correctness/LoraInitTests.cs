using System.Text.Json;
using Peft.Methods.Lora;
using Peft.Tests.Checkpoints;
using Peft.Tuners;
using TorchSharp;
using static Peft.Tests.Correctness.TinyFixtures;
using static TorchSharp.torch;

namespace Peft.Tests.Correctness;

/// <summary>init_lora_weights: PiSSA, OLoRA and orthogonal on creation; any value on load.</summary>
public class LoraInitTests
{
    private static LoraConfig Config(string init, int rank = 4) => new()
    {
        TaskType = TaskType.CausalLM,
        TargetModules = TargetModules.FromNames(["q_proj", "v_proj", "down_proj"]),
        R = rank,
        LoraAlpha = 8,
        InitLoraWeights = JsonSerializer.SerializeToElement(init),
    };

    private static Tensor Weight(PeftModel peft, string suffix) =>
        peft.named_parameters().Single(p => p.name.EndsWith(suffix, StringComparison.Ordinal)).parameter.detach();

    [Theory]
    [InlineData("pissa")]
    [InlineData("pissa_niter_4")]
    [InlineData("olora")]
    public void ResidualInitialisationsKeepTheOutputsAndMoveTheTopPartIntoTheAdapter(string init)
    {
        using var scope = torch.NewDisposeScope();
        var model = Load("llama-clm", TaskType.CausalLM);
        var baseLogits = Logits(model);
        var original = model.named_parameters().Single(p => p.name == "model.layers.0.self_attn.q_proj.weight").parameter.detach().clone();
        torch.manual_seed(0);
        var peft = PeftModels.Default.GetPeftModel(model, Config(init));
        Assert.True(MaxDifference(Logits(peft), baseLogits) < 1e-4, "W_res + scaling·B·A = W");

        var residual = Weight(peft, "layers.0.self_attn.q_proj.base_layer.weight");
        var a = Weight(peft, "layers.0.self_attn.q_proj.lora_A.default.weight");
        var b = Weight(peft, "layers.0.self_attn.q_proj.lora_B.default.weight");
        Assert.Equal([4L, original.shape[1]], a.shape);
        Assert.Equal([original.shape[0], 4L], b.shape);
        Assert.True(MaxDifference(residual + 2.0 * b.matmul(a), original) < 1e-4, "the base weight holds the residual");
        Assert.True(MaxDifference(residual, original) > 1e-3, "the base weight changed");
        if (init.StartsWith("pissa", StringComparison.Ordinal))
        {
            // The adapter holds the top-r singular part: the residual's largest singular value is W's fifth.
            var s = torch.linalg.svdvals(original);
            var tolerance = init == "pissa" ? 1e-4 : 0.05;
            Assert.True(Math.Abs(torch.linalg.svdvals(residual)[0].item<float>() - s[4].item<float>()) < tolerance * s[0].item<float>());
        }
        else
        {
            // OLoRA: B is the first r columns of W's Q factor, orthonormal.
            Assert.True(MaxDifference(b.T.matmul(b), torch.eye(4)) < 1e-4);
        }
    }

    [Fact]
    public void OrthogonalStartsAtZeroWithNonZeroFactors()
    {
        using var scope = torch.NewDisposeScope();
        var model = Load("llama-clm", TaskType.CausalLM);
        var baseLogits = Logits(model);
        torch.manual_seed(0);
        var peft = PeftModels.Default.GetPeftModel(model, Config("orthogonal"));
        Assert.True(MaxDifference(Logits(peft), baseLogits) < 1e-5);
        var a = Weight(peft, "layers.0.self_attn.q_proj.lora_A.default.weight");
        var b = Weight(peft, "layers.0.self_attn.q_proj.lora_B.default.weight");
        Assert.True(a.abs().max().item<float>() > 1e-3 && b.abs().max().item<float>() > 1e-3);
        Assert.True(b.matmul(a).abs().max().item<float>() < 1e-6);
        var odd = Assert.Throws<PeftConfigException>(() => PeftModels.Default.GetPeftModel(Load("llama-clm", TaskType.CausalLM), Config("orthogonal", rank: 3)));
        Assert.Contains("even", odd.Message);
    }

    [Fact]
    public void UnimplementedInitialisationIsRefusedByNameOnCreationButLoads()
    {
        using var scope = torch.NewDisposeScope();
        var error = Assert.Throws<PeftConfigException>(() => PeftModels.Default.GetPeftModel(Load("llama-clm", TaskType.CausalLM), Config("eva")));
        Assert.Contains("init_lora_weights", error.Message);
        Assert.Contains("\"eva\"", error.Message);

        using var scratch = new ScratchDirectory();
        torch.manual_seed(0);
        PeftModels.Default.GetPeftModel(Load("llama-clm", TaskType.CausalLM), Config("pissa")).SavePretrained(scratch.Path);
        foreach (var value in new[] { "\"eva\"", "\"loftq\"", "\"corda\"", "\"pissa\"", "\"pissa_niter_16\"" })
        {
            var path = scratch.File("adapter_config.json");
            var json = System.Text.RegularExpressions.Regex.Replace(File.ReadAllText(path), "\"init_lora_weights\": [^,\\n]+", $"\"init_lora_weights\": {value}");
            File.WriteAllText(path, json);
            var fresh = Load("llama-clm", TaskType.CausalLM);
            var before = fresh.named_parameters().Single(p => p.name == "model.layers.0.self_attn.q_proj.weight").parameter.detach().clone();
            var loaded = PeftModels.Default.FromPretrained(fresh, scratch.Path);
            Assert.Equal(value.Trim('"'), System.Text.Json.JsonSerializer.Deserialize<string>(((LoraConfig)loaded.PeftConfig).InitLoraWeights!.Json));
            // The weights come from the file: loading runs no initialisation on the base weights.
            Assert.Equal(0f, MaxDifference(Weight(loaded, "layers.0.self_attn.q_proj.base_layer.weight"), before));
        }
    }
}
