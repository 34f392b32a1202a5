using System.Text.Json;
using Peft.Checkpoints;
using Peft.Modeling;
using Peft.Tests.Checkpoints;
using TorchSharp;
using static TorchSharp.torch;

namespace Peft.Tests.Backbones;

/// <summary>
/// scaled_dot_product_attention computes what the explicit path computes: loss, logits and every trainable gradient of
/// the fixtures' models, with padding masks, prefixes as past keys/values, and greedy decoding through the cache.
/// </summary>
public class FusedAttentionTests
{
    /// <summary>
    /// Bound: both paths compute the same float32 sums in another order (the fused kernel blocks over keys and uses an
    /// online softmax), a few ulps (2⁻²³ relative) per operation; through two layers, the head and the backward pass,
    /// 2⁻¹⁴ (6e-5) of each tensor's largest magnitude leaves room for that and none for a different formula (a missing
    /// mask or scale moves these tensors by more than 1 %).
    /// </summary>
    [Theory]
    [InlineData("gpt2-clm-lora")]
    [InlineData("gpt2-clm-prefix")]
    [InlineData("gpt2-seqcls-lora")]
    [InlineData("llama-clm-lora")]
    [InlineData("llama-clm-prefix")]
    [InlineData("bert-seqcls-lora")]
    [InlineData("bert-seqcls-prefix")]
    [InlineData("roberta-seqcls-lora")]
    public void SdpaMatchesTheExplicitPathInLossLogitsAndGradients(string caseName)
    {
        using var scope = NewDisposeScope();
        var eager = Run(caseName, AttentionImplementation.Eager);
        var fused = Run(caseName, AttentionImplementation.Sdpa);
        Assert.Equal(eager.Keys.Order(), fused.Keys.Order());
        foreach (var (name, expected) in eager)
        {
            var scale = Math.Max(expected.abs().max().item<float>(), 1e-6f);
            var difference = (fused[name] - expected).abs().max().item<float>();
            Assert.True(difference <= Math.Pow(2, -14) * scale, $"{caseName}: {name} differs by {difference} (scale {scale})");
        }
    }

    [Theory]
    [InlineData("gpt2-clm-lora")]
    [InlineData("llama-clm-lora")]
    public void GreedyDecodingThroughTheCacheGivesTheSameTokens(string caseName)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var (eager, inputs, _) = Load(caseName, AttentionImplementation.Eager);
        var (fused, _, _) = Load(caseName, AttentionImplementation.Sdpa);
        var expected = Generation.Greedy(eager, eager.Model.Config, inputs.InputIds!, inputs.AttentionMask, 6);
        var actual = Generation.Greedy(fused, fused.Model.Config, inputs.InputIds!, inputs.AttentionMask, 6);
        Assert.Equal(expected.data<long>().ToArray(), actual.data<long>().ToArray());
    }

    [Fact]
    public void AutoUsesTheExplicitPathForFloat32OnTheCpuOnly()
    {
        using var scope = NewDisposeScope();
        Assert.False(FusedAttention.Use(AttentionImplementation.Auto, zeros(1, 1, 2, 4)));
        Assert.True(FusedAttention.Use(AttentionImplementation.Auto, zeros(1, 1, 2, 4, ScalarType.BFloat16)));
        Assert.True(FusedAttention.Use(AttentionImplementation.Sdpa, zeros(1, 1, 2, 4)));
        Assert.False(FusedAttention.Use(AttentionImplementation.Eager, zeros(1, 1, 2, 4, ScalarType.BFloat16)));
    }

    [Fact]
    public void AScaleOtherThanOneOverRootDIsFoldedIntoTheQuery()
    {
        using var scope = NewDisposeScope();
        manual_seed(1);
        var (q, k, v) = (randn(2, 3, 5, 8), randn(2, 3, 7, 8), randn(2, 3, 7, 8));
        var mask = randn(2, 1, 5, 7);
        var expected = matmul(nn.functional.softmax(matmul(q, k.transpose(-1, -2)) * 0.7 + mask, -1), v);
        var actual = FusedAttention.Compute(q, k, v, mask, 0.7, 0.5, training: false);
        Assert.True((actual - expected).abs().max().item<float>() < 1e-5f);
    }

    private static Dictionary<string, Tensor> Run(string caseName, AttentionImplementation implementation)
    {
        var (peft, inputs, task) = Load(caseName, implementation);
        peft.train();
        var output = peft.call(inputs);
        var loss = output.Loss ?? throw new InvalidOperationException("no loss");
        loss.backward();
        var result = new Dictionary<string, Tensor> { ["loss"] = loss.detach(), ["logits"] = output.Logits.detach() };
        foreach (var (name, p) in peft.named_parameters().Where(p => p.parameter.requires_grad && p.parameter.grad is not null))
        {
            result["grad " + name] = p.grad!.detach();
        }
        Assert.True(result.Count > 2, $"{caseName}: no gradients");
        return result;
    }

    private static (PeftModel Peft, ModelInputs Inputs, TaskType Task) Load(string caseName, AttentionImplementation implementation)
    {
        var caseDirectory = Fixtures.Path("cases", caseName);
        using var meta = JsonDocument.Parse(File.ReadAllBytes(Path.Combine(caseDirectory, "meta.json")));
        var task = new TaskType(meta.RootElement.GetProperty("task_type").GetString()!);
        var model = PeftModels.Default.LoadPretrained(Fixtures.Path(meta.RootElement.GetProperty("base_model_dir").GetString()!), task,
            c => c with { AttnImplementation = implementation });
        var peft = PeftModels.Default.FromPretrained(model, Path.Combine(caseDirectory, "adapter"), isTrainable: true);
        var io = SafeTensors.Load(Path.Combine(caseDirectory, "io.safetensors"));
        var inputs = new ModelInputs
        {
            InputIds = io.GetValueOrDefault("input.input_ids"),
            AttentionMask = io.GetValueOrDefault("input.attention_mask"),
            Labels = io.GetValueOrDefault("input.labels"),
        };
        return (peft, inputs, task);
    }
}
