using System.Text.Json;
using Peft.Checkpoints;
using Peft.Modeling;
using Peft.Tests.Checkpoints;
using TorchSharp;
using static TorchSharp.torch;

namespace Peft.Tests.Backbones;

/// <summary>
/// Half-precision training as the reference does it (frozen base in bf16, adapters in float32, loss in float32),
/// and forward passes that create every tensor on the model's device, for every architecture.
/// </summary>
public class HalfPrecisionTests
{
    public static TheoryData<string> EveryArchitecture() => new()
    {
        "bart-s2s-lora", "bert-seqcls-lora", "bert-tokcls-lora", "bloom-clm-lora", "bloom-seqcls-lora", "clip_text-feat-lora",
        "deberta-seqcls-lora", "deberta_v2-seqcls-lora", "deberta_v2-tokcls-lora", "gpt2-clm-lora", "gpt2-seqcls-lora",
        "gpt2-tokcls-lora", "gpt_neo-clm-lora", "gpt_neox-clm-lora", "gptj-clm-lora", "layoutlm-tokcls-lora", "llama-clm-lora",
        "mt5-s2s-lora", "opt-clm-lora", "roberta-seqcls-lora", "roberta-tokcls-lora", "t5-s2s-lora",
    };

    /// <summary>
    /// The model on the CPU with TorchSharp's default device switched to <c>meta</c>: a tensor made in forward without
    /// the model's device (masks, positions, rotary tables, ALiBi, relative buckets, caches, label shifting) lands on
    /// meta and the first operation mixing it with the model's fails. (Running the model itself on meta is not
    /// possible with libtorch's C++ build: it has no meta kernels for index_select or where, which live in Python.)
    /// </summary>
    [Theory]
    [MemberData(nameof(EveryArchitecture))]
    public void ForwardCreatesEveryTensorOnTheModelsDevice(string caseName)
    {
        using var scope = NewDisposeScope();
        var (peft, inputs, task) = Load(caseName, ModelLoadOptions.Default, trainable: true);
        peft.train();
        var previous = torch.get_default_device();
        torch.set_default_device(new Device("meta"));
        try
        {
            var output = peft.call(inputs);
            var loss = LossOf(output, task);
            loss.backward();
            Assert.Equal(DeviceType.CPU, output.Logits.device_type);
            Assert.Equal(DeviceType.CPU, loss.device_type);
        }
        finally
        {
            torch.set_default_device(previous);
        }
    }

    [Theory]
    [MemberData(nameof(EveryArchitecture))]
    public void ABf16LoraStepTrainsFloat32AdaptersOverAFrozenBf16Base(string caseName)
    {
        using var scope = NewDisposeScope();
        var (peft, inputs, task) = Load(caseName, new ModelLoadOptions { DType = ModelDType.BFloat16 }, trainable: true);
        peft.train();
        var trainable = peft.named_parameters().Where(p => p.parameter.requires_grad).ToList();
        Assert.NotEmpty(trainable);
        foreach (var (name, p) in peft.named_parameters().Where(p => !p.parameter.requires_grad))
        {
            if (p.is_floating_point()) Assert.True(p.dtype == ScalarType.BFloat16, $"{caseName}: frozen {name} is {p.dtype}");
        }
        var before = trainable.ToDictionary(p => p.name, p => p.parameter.detach().clone());

        var output = peft.call(inputs);
        var loss = LossOf(output, task);
        Assert.Equal(ScalarType.Float32, loss.dtype);
        Assert.True(float.IsFinite(loss.item<float>()));
        loss.backward();
        using var optimizer = optim.AdamW(trainable.Select(p => p.parameter), lr: 1e-2);
        optimizer.step();

        var moved = 0;
        foreach (var (name, p) in trainable)
        {
            if (name.Contains("lora_", StringComparison.Ordinal))
            {
                Assert.True(p.dtype == ScalarType.Float32, $"{caseName}: adapter {name} is {p.dtype}");
                Assert.True(p.grad is null || p.grad.dtype == ScalarType.Float32, $"{caseName}: gradient of {name}");
            }
            Assert.True(p.grad is null || p.grad.isfinite().all().item<bool>(), $"{caseName}: gradient of {name} is not finite");
            if (!p.detach().equal(before[name]).all().item<bool>()) moved++;
        }
        Assert.True(moved > 0, $"{caseName}: no trainable parameter moved");
    }

    /// <summary>
    /// A bf16 base agrees with the float32 one within bf16's rounding. Bound: every weight is rounded to bf16
    /// (relative error at most 2^-9) and every layer's output is rounded again, so each of the model's stages adds
    /// at most about 2^-8 of the activations' scale; the bound allows 2^-8 per stage, over
    /// (2 × layers + 2) stages (attention and MLP per layer, the embedding and the head), of the largest float32 logit.
    /// </summary>
    [Theory]
    [InlineData("llama-clm-lora", 2)]
    [InlineData("gpt2-clm-lora", 2)]
    [InlineData("bert-seqcls-lora", 2)]
    [InlineData("t5-s2s-lora", 4)]
    public void Bf16LogitsAgreeWithFloat32WithinBf16Rounding(string caseName, int layers)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var (full, inputs, _) = Load(caseName, ModelLoadOptions.Default, trainable: false);
        var (half, _, _) = Load(caseName, new ModelLoadOptions { DType = ModelDType.BFloat16 }, trainable: false);
        var expected = full.call(inputs).Logits;
        var actual = half.call(inputs).Logits.to(ScalarType.Float32);
        var scale = expected.abs().max().item<float>();
        var bound = (2 * layers + 2) * Math.Pow(2, -8) * scale;
        var difference = (actual - expected).abs().max().item<float>();
        Assert.True(difference <= bound, $"{caseName}: max |bf16 - float32| {difference} > {bound} (logits up to {scale})");
        Assert.True(difference > 0, "the bf16 model computed in float32");
    }

    private static (PeftModel Peft, ModelInputs Inputs, TaskType Task) Load(string caseName, ModelLoadOptions options, bool trainable)
    {
        var caseDirectory = Fixtures.Path("cases", caseName);
        using var meta = JsonDocument.Parse(File.ReadAllBytes(Path.Combine(caseDirectory, "meta.json")));
        var task = meta.RootElement.GetProperty("task_type").GetString() is { } name ? new TaskType(name) : TaskType.FeatureExtraction;
        var model = PeftModels.Default.LoadPretrained(Fixtures.Path(meta.RootElement.GetProperty("base_model_dir").GetString()!), task, options);
        var peft = PeftModels.Default.FromPretrained(model, Path.Combine(caseDirectory, "adapter"), isTrainable: trainable);
        var io = SafeTensors.Load(Path.Combine(caseDirectory, "io.safetensors"));
        var inputs = new ModelInputs
        {
            InputIds = io.GetValueOrDefault("input.input_ids"),
            AttentionMask = io.GetValueOrDefault("input.attention_mask"),
            Labels = io.GetValueOrDefault("input.labels"),
            DecoderInputIds = io.GetValueOrDefault("input.decoder_input_ids"),
            Bbox = io.GetValueOrDefault("input.bbox"),
        };
        return (peft, inputs, task);
    }

    // Bare encoders (CLIP's text model) return no loss: the mean square of the features stands in, in float32.
    private static Tensor LossOf(ModelOutputs output, TaskType task) =>
        output.Loss ?? (task == TaskType.FeatureExtraction ? output.Logits.to(ScalarType.Float32).pow(2).mean() : throw new InvalidOperationException("no loss"));
}
