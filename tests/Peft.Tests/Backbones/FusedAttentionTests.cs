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
    [InlineData("layoutlm-tokcls-lora")]
    [InlineData("gpt_neo-clm-lora")]
    [InlineData("gpt_neo-clm-prefix")]
    [InlineData("gptj-clm-lora")]
    [InlineData("gptj-clm-prefix")]
    [InlineData("gpt_neox-clm-lora")]
    [InlineData("gpt_neox-clm-prefix")]
    [InlineData("opt-clm-lora")]
    [InlineData("opt-clm-prefix")]
    [InlineData("bloom-clm-lora")]
    [InlineData("bloom-clm-prefix")]
    [InlineData("bloom-seqcls-lora")]
    [InlineData("bart-s2s-lora")]
    [InlineData("bart-s2s-prefix")]
    [InlineData("t5-s2s-lora")]
    [InlineData("t5-s2s-prefix")]
    [InlineData("mt5-s2s-lora")]
    [InlineData("mt5-s2s-prefix")]
    [InlineData("vit-imgcls-lora")]
    [InlineData("swin-imgcls-lora")]
    // In float64: these gradients are (nearly) zero by construction and float32 would compare rounding noise. CLIP's
    // loss, the mean square of layer-normed features, hardly depends on what precedes the norm (all its gradients are
    // below 4e-6); SegFormer's head biases feed a training-mode batch norm, which removes any constant.
    [InlineData("clip_text-feat-lora", true)]
    [InlineData("segformer-seg-lora", true)]
    public void SdpaMatchesTheExplicitPathInLossLogitsAndGradients(string caseName, bool float64 = false)
    {
        using var scope = NewDisposeScope();
        var eager = Run(caseName, AttentionImplementation.Eager, float64);
        var fused = Run(caseName, AttentionImplementation.Sdpa, float64);
        Assert.Equal(eager.Keys.Order(), fused.Keys.Order());
        var mismatches = new List<string>();
        foreach (var (name, expected) in eager)
        {
            var scale = Math.Max(expected.abs().max().to(ScalarType.Float64).item<double>(), 1e-6);
            var difference = (fused[name] - expected).abs().max().to(ScalarType.Float64).item<double>();
            if (difference > Math.Pow(2, -14) * scale) mismatches.Add($"{name} differs by {difference} (scale {scale})");
        }
        Assert.True(mismatches.Count == 0, $"{caseName}: " + string.Join("; ", mismatches));
    }

    [Theory]
    [InlineData("gpt2-clm-lora")]
    [InlineData("llama-clm-lora")]
    [InlineData("gpt_neo-clm-lora")]
    [InlineData("gptj-clm-lora")]
    [InlineData("gpt_neox-clm-lora")]
    [InlineData("opt-clm-lora")]
    [InlineData("bloom-clm-lora")]
    [InlineData("bart-s2s-lora", true)]
    [InlineData("t5-s2s-lora", true)]
    [InlineData("mt5-s2s-lora", true)]
    public void GreedyDecodingThroughTheCacheGivesTheSameTokens(string caseName, bool encoderDecoder = false)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var (eager, inputs, _) = Load(caseName, AttentionImplementation.Eager);
        var (fused, _, _) = Load(caseName, AttentionImplementation.Sdpa);
        var expected = Generation.Greedy(eager, eager.Model.Config, inputs.InputIds!, inputs.AttentionMask, 6, encoderDecoder: encoderDecoder);
        var actual = Generation.Greedy(fused, fused.Model.Config, inputs.InputIds!, inputs.AttentionMask, 6, encoderDecoder: encoderDecoder);
        Assert.Equal(expected.data<long>().ToArray(), actual.data<long>().ToArray());
    }

    /// <summary>DeBERTa keeps its explicit attention: asking for the fused kernel is an error naming the option, Auto loads.</summary>
    [Theory]
    [InlineData("deberta-seqcls-lora")]
    [InlineData("deberta_v2-seqcls-lora")]
    public void DebertaRefusesSdpa(string caseName)
    {
        using var scope = NewDisposeScope();
        var error = Assert.Throws<NotSupportedException>(() => Load(caseName, AttentionImplementation.Sdpa));
        Assert.Contains("AttnImplementation Sdpa", error.Message);
        Assert.NotNull(Load(caseName, AttentionImplementation.Auto).Peft);
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

    /// <summary>
    /// T5's relative_attention_bias and Swin's relative_position_bias_table reach the scores only through the additive
    /// mask: with them trainable, the fused kernel must give the mask its gradient, and the same one; the float32
    /// path of GPT-Neo and GPT-J must return the value's dtype.
    /// </summary>
    [Fact]
    public void AMaskThatRequiresGradGetsTheExplicitPathsGradient()
    {
        using var scope = NewDisposeScope();
        manual_seed(2);
        var (q, k, v) = (randn(2, 3, 5, 8), randn(2, 3, 5, 8), randn(2, 3, 5, 8));
        var weights = randn(2, 3, 5, 8);
        var expectedMask = randn(1, 3, 5, 5).requires_grad_(true);
        var actualMask = expectedMask.detach().clone().requires_grad_(true);
        var expected = matmul(nn.functional.softmax(matmul(q, k.transpose(-1, -2)) + expectedMask, -1), v);
        (expected * weights).sum().backward();
        var actual = FusedAttention.Compute(q, k, v, actualMask, 1.0, 0, training: true);
        (actual * weights).sum().backward();
        Assert.True((actual - expected).abs().max().item<float>() < 1e-5f);
        Assert.NotNull(actualMask.grad);
        Assert.True(expectedMask.grad!.abs().max().item<float>() > 1e-3f);
        Assert.True((actualMask.grad! - expectedMask.grad!).abs().max().item<float>() < 1e-5f);

        var half = FusedAttention.Compute(q.to(ScalarType.BFloat16), k.to(ScalarType.BFloat16), v.to(ScalarType.BFloat16), null, 1.0, 0, training: false, inFloat32: true);
        Assert.Equal(ScalarType.BFloat16, half.dtype);
    }

    private static Dictionary<string, Tensor> Run(string caseName, AttentionImplementation implementation, bool float64)
    {
        var (peft, inputs, task) = Load(caseName, implementation, float64);
        peft.train();
        var output = peft.call(inputs);
        // A feature extractor has no loss: the surrogate the reference's fixtures use (mean square of the features).
        var loss = output.Loss ?? (task == TaskType.FeatureExtraction ? output.Logits.pow(2).mean() : throw new InvalidOperationException("no loss"));
        loss.backward();
        var result = new Dictionary<string, Tensor> { ["loss"] = loss.detach(), ["logits"] = output.Logits.detach() };
        foreach (var (name, p) in peft.named_parameters().Where(p => p.parameter.requires_grad && p.parameter.grad is not null))
        {
            result["grad " + name] = p.grad!.detach();
        }
        Assert.True(result.Count > 2, $"{caseName}: no gradients");
        return result;
    }

    private static (PeftModel Peft, ModelInputs Inputs, TaskType Task) Load(string caseName, AttentionImplementation implementation, bool float64 = false)
    {
        var caseDirectory = Fixtures.Path("cases", caseName);
        using var meta = JsonDocument.Parse(File.ReadAllBytes(Path.Combine(caseDirectory, "meta.json")));
        // As the conformance runner: bare models and vision heads have no task type, the kind of inputs tells.
        var task = meta.RootElement.GetProperty("task_type").GetString() is { } taskName ? new TaskType(taskName) : meta.RootElement.GetProperty("input_kind").GetString() switch
        {
            "imgcls" => TaskType.ImageClassification,
            "seg" => TaskType.SemanticSegmentation,
            _ => TaskType.FeatureExtraction,
        };
        var model = PeftModels.Default.LoadPretrained(Fixtures.Path(meta.RootElement.GetProperty("base_model_dir").GetString()!), task,
            c => c with { AttnImplementation = implementation });
        if (float64) model.to(ScalarType.Float64);
        var peft = PeftModels.Default.FromPretrained(model, Path.Combine(caseDirectory, "adapter"), isTrainable: true);
        if (float64) peft.to(ScalarType.Float64);
        var io = SafeTensors.Load(Path.Combine(caseDirectory, "io.safetensors"));
        var inputs = new ModelInputs
        {
            InputIds = io.GetValueOrDefault("input.input_ids"),
            AttentionMask = io.GetValueOrDefault("input.attention_mask"),
            Labels = io.GetValueOrDefault("input.labels"),
            DecoderInputIds = io.GetValueOrDefault("input.decoder_input_ids"),
            DecoderAttentionMask = io.GetValueOrDefault("input.decoder_attention_mask"),
            PixelValues = io.GetValueOrDefault("input.pixel_values") is { } pixels && float64 ? pixels.to(ScalarType.Float64) : io.GetValueOrDefault("input.pixel_values"),
            Bbox = io.GetValueOrDefault("input.bbox"),
            TokenTypeIds = io.GetValueOrDefault("input.token_type_ids"),
        };
        return (peft, inputs, task);
    }
}
