using System.Text.Json;
using Peft.Checkpoints;
using Peft.Modeling;
using Peft.Tests.Checkpoints;
using Peft.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace Peft.Tests.Backbones;

/// <summary>Recomputing each layer in backward gives the loss and gradients that keeping the activations gives.</summary>
public class GradientCheckpointingTests
{
    /// <summary>
    /// The recomputation runs the same float32 operations on the same inputs with the same random state (dropout
    /// included: the models are in training mode), so loss and gradients agree to float32 rounding; the only other
    /// order is the accumulation of a gradient from two branches, hence 2⁻²⁰ of each tensor's scale, not equality.
    /// </summary>
    [Theory]
    [InlineData("gpt2-clm-lora")]
    [InlineData("gpt2-seqcls-lora")]
    [InlineData("llama-clm-lora")]
    [InlineData("llama-clm-lora_all_linear")]
    [InlineData("gpt_neo-clm-lora")]
    [InlineData("gptj-clm-lora")]
    [InlineData("gpt_neox-clm-lora")]
    [InlineData("bloom-clm-lora")]
    [InlineData("bloom-seqcls-lora")]
    [InlineData("opt-clm-lora")]
    [InlineData("bert-seqcls-lora")]
    [InlineData("roberta-seqcls-lora")]
    public void CheckpointedLossAndGradientsEqualThePlainOnes(string caseName)
    {
        using var scope = NewDisposeScope();
        var (plain, plainCalls) = Step(caseName, checkpointing: false);
        var (checkpointed, checkpointedCalls) = Step(caseName, checkpointing: true);
        // The recomputation really ran: each adapted layer's forward ran again in backward.
        Assert.Equal(1, plainCalls);
        Assert.Equal(2, checkpointedCalls);
        Assert.Equal(plain.Keys.Order(), checkpointed.Keys.Order());
        foreach (var (name, expected) in plain)
        {
            var scale = Math.Max(expected.abs().max().item<float>(), 1e-6f);
            var difference = (checkpointed[name] - expected).abs().max().item<float>();
            Assert.True(difference <= Math.Pow(2, -20) * scale, $"{caseName}: {name} differs by {difference} (scale {scale})");
        }
    }

    [Fact]
    public void AnArchitectureWithoutCheckpointingIsRefusedByName()
    {
        using var scope = NewDisposeScope();
        var (peft, _) = Load("t5-s2s-lora");
        var error = Assert.Throws<NotSupportedException>(() => peft.GradientCheckpointingEnable());
        Assert.Contains("'t5'", error.Message);
    }

    [Fact]
    public void PrefixTuningUnderCheckpointingIsRefused()
    {
        using var scope = NewDisposeScope();
        var (peft, inputs) = Load("gpt2-clm-prefix");
        peft.GradientCheckpointingEnable();
        peft.train();
        var error = Assert.Throws<NotSupportedException>(() => peft.call(inputs));
        Assert.Contains("key/value cache", error.Message);
    }

    [Fact]
    public void CheckpointingSwitchesOnAndOffAndLeavesEvaluationAlone()
    {
        using var scope = NewDisposeScope();
        var (peft, inputs) = Load("gpt2-clm-lora");
        peft.GradientCheckpointingEnable();
        Assert.True(peft.Model.IsGradientCheckpointing);
        peft.eval();
        var checkpointed = peft.call(inputs).Logits;
        peft.Model.GradientCheckpointingDisable();
        Assert.False(peft.Model.IsGradientCheckpointing);
        Assert.True(checkpointed.equal(peft.call(inputs).Logits).all().item<bool>());
    }

    private static (Dictionary<string, Tensor> Tensors, int Calls) Step(string caseName, bool checkpointing)
    {
        var (peft, inputs) = Load(caseName);
        var calls = 0;
        var adapted = peft.modules().OfType<Peft.Methods.Lora.LoraLayer>().First();
        adapted.register_forward_pre_hook((_, x) => { calls++; return x; });
        if (checkpointing) peft.GradientCheckpointingEnable();
        peft.train();
        manual_seed(7);
        var loss = peft.call(inputs).Loss!;
        loss.backward();
        var result = new Dictionary<string, Tensor> { ["loss"] = loss.detach() };
        foreach (var (name, p) in peft.named_parameters().Where(p => p.parameter.requires_grad))
        {
            Assert.True(p.grad is not null, $"{caseName}: {name} got no gradient (checkpointing {checkpointing})");
            result["grad " + name] = p.grad!.detach();
        }
        return (result, calls);
    }

    private static (PeftModel Peft, ModelInputs Inputs) Load(string caseName)
    {
        var caseDirectory = Fixtures.Path("cases", caseName);
        using var meta = JsonDocument.Parse(File.ReadAllBytes(Path.Combine(caseDirectory, "meta.json")));
        var task = new TaskType(meta.RootElement.GetProperty("task_type").GetString()!);
        var model = PeftModels.Default.LoadPretrained(Fixtures.Path(meta.RootElement.GetProperty("base_model_dir").GetString()!), task);
        var peft = PeftModels.Default.FromPretrained(model, Path.Combine(caseDirectory, "adapter"), isTrainable: true);
        var io = SafeTensors.Load(Path.Combine(caseDirectory, "io.safetensors"));
        var inputs = new ModelInputs
        {
            InputIds = io.GetValueOrDefault("input.input_ids"),
            AttentionMask = io.GetValueOrDefault("input.attention_mask"),
            Labels = io.GetValueOrDefault("input.labels"),
            DecoderInputIds = io.GetValueOrDefault("input.decoder_input_ids"),
        };
        return (peft, inputs);
    }
}
