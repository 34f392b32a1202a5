using System.Text.Json;
using System.Text.Json.Nodes;
using Peft.Backbones.ResNet;
using Peft.Checkpoints;
using Peft.Tuners;
using Peft.Modeling;
using Peft.Tests.Checkpoints;
using Peft.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace Peft.Tests.Backbones;

/// <summary>Recomputing each layer in backward gives the loss and gradients that keeping the activations gives.</summary>
public sealed class GradientCheckpointingTests : IDisposable
{
    /// <summary>Every dropout of the copied configs (and LoRA's): the recomputation must draw the same masks.</summary>
    private const double Dropout = 0.1;

    private readonly string _directory = Directory.CreateTempSubdirectory("peft-checkpointing-").FullName;

    /// <inheritdoc />
    public void Dispose() => Directory.Delete(_directory, recursive: true);

    /// <summary>
    /// The recomputation runs the same float32 operations on the same inputs with the same random state (every dropout
    /// of the model and LoRA's set to 0.1: the models are in training mode), so loss and gradients agree to float32
    /// rounding; the only other order is the accumulation of a gradient from two branches, hence 2⁻²⁰ of each tensor's
    /// scale, not equality.
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
    [InlineData("layoutlm-tokcls-lora")]
    [InlineData("t5-s2s-lora")]
    [InlineData("t5-s2s-ia3")]
    [InlineData("mt5-s2s-lora")]
    [InlineData("bart-s2s-lora")]
    [InlineData("deberta-seqcls-lora")]
    [InlineData("deberta_v2-seqcls-lora")]
    [InlineData("deberta_v2-tokcls-lora")]
    [InlineData("clip_text-feat-lora")]
    [InlineData("vit-imgcls-lora")]
    [InlineData("swin-imgcls-lora")]
    [InlineData("segformer-seg-lora")]
    public void CheckpointedLossAndGradientsEqualThePlainOnes(string caseName)
    {
        using var scope = NewDisposeScope();
        var plain = Step(caseName, checkpointing: false);
        var checkpointed = Step(caseName, checkpointing: true);

        // Dropout is really on: another seed gives another loss.
        Assert.NotEqual(plain.Tensors["loss"].item<float>(), Step(caseName, checkpointing: false, seed: 8).Tensors["loss"].item<float>());
        // The recomputation really ran: without checkpointing every adapted layer ran once; with it, at most twice, and
        // in every checkpointed stack some adapted layer ran again in backward (T5 and BART: encoder and decoder).
        Assert.All(plain.Calls.Values, calls => Assert.Equal(1, calls));
        Assert.All(checkpointed.Calls.Values, calls => Assert.InRange(calls, 1, 2));
        Assert.NotEmpty(checkpointed.Stacks);
        Assert.All(checkpointed.Stacks, stack => Assert.Contains(stack, layer => checkpointed.Calls[layer] == 2));

        Assert.Equal(plain.Tensors.Keys.Order(), checkpointed.Tensors.Keys.Order());
        foreach (var (name, expected) in plain.Tensors)
        {
            var scale = Math.Max(expected.abs().max().item<float>(), 1e-6f);
            var difference = (checkpointed.Tensors[name] - expected).abs().max().item<float>();
            Assert.True(difference <= Math.Pow(2, -20) * scale, $"{caseName}: {name} differs by {difference} (scale {scale})");
        }
    }

    /// <summary>
    /// A layer of two inputs that both need a gradient and two outputs, one of them an input handed on unchanged (T5's
    /// position bias after the first block) and one unused downstream: the gradients of both inputs and of the
    /// parameter it captures are the plain ones.
    /// </summary>
    [Fact]
    public void ALayerOfSeveralInputsAndOutputsGetsEveryGradient()
    {
        using var scope = NewDisposeScope();
        manual_seed(3);
        var weight = randn(4, 4).requires_grad_();
        var (x, y) = (randn(2, 4).requires_grad_(), randn(2, 4).requires_grad_());
        var mask = ones(2, 4);
        var recomputed = 0;
        Tensor?[] Layer(Tensor?[] inputs)
        {
            recomputed += is_grad_enabled() ? 1 : 0;
            var h = nn.functional.dropout(inputs[0]!.matmul(weight) * inputs[1]!.sin(), 0.5, training: true) * inputs[2]!;
            return [h, inputs[1], inputs[0]!.square()];
        }

        Tensor[] Grads(bool checkpointing)
        {
            foreach (var t in new[] { weight, x, y }) t.grad = null;
            manual_seed(11);
            var outputs = GradientCheckpoint.RunMany(checkpointing, training: true, Layer, null, x, y, mask);
            // The second output (y itself) feeds the loss; the third is unused.
            (outputs[0]!.sum() + outputs[1]!.cos().sum()).backward();
            return [weight.grad!.clone(), x.grad!.clone(), y.grad!.clone()];
        }

        var plain = Grads(checkpointing: false);
        Assert.Equal(0, recomputed - 1); // the plain call ran once with autograd on
        var checkpointed = Grads(checkpointing: true);
        Assert.Equal(2, recomputed);     // the checkpointed forward ran without autograd, its recomputation with
        for (int i = 0; i < plain.Length; i++)
        {
            var scale = plain[i].abs().max().item<float>();
            Assert.True((checkpointed[i] - plain[i]).abs().max().item<float>() <= Math.Pow(2, -20) * scale, $"gradient {i}");
        }
    }

    [Fact]
    public void ResNetIsRefusedByName()
    {
        using var scope = NewDisposeScope();
        var config = new ResNetConfig { ModelType = "resnet", EmbeddingSize = 8, HiddenSizes = [8, 16], Depths = [1, 1], LayerType = "basic", NumLabelsValue = 3 };
        var model = PeftModels.Default.Registry.Architecture("resnet").Build(config, TaskType.ImageClassification);
        Assert.False(model.SupportsGradientCheckpointing);
        var error = Assert.Throws<NotSupportedException>(() => model.GradientCheckpointingEnable());
        Assert.Contains("'resnet'", error.Message);
        Assert.Contains("batch norm", error.Message);
    }

    [Theory]
    [InlineData("gpt2-clm-prefix")]
    [InlineData("t5-s2s-prefix")]
    [InlineData("bart-s2s-prefix")]
    public void PrefixTuningUnderCheckpointingIsRefused(string caseName)
    {
        using var scope = NewDisposeScope();
        var (peft, inputs) = Load(caseName, dropout: false);
        peft.GradientCheckpointingEnable();
        peft.train();
        var error = Assert.Throws<NotSupportedException>(() => peft.call(inputs));
        Assert.Contains("key/value cache", error.Message);
    }

    [Theory]
    [InlineData("gpt2-clm-lora")]
    [InlineData("t5-s2s-lora")]
    public void CheckpointingSwitchesOnAndOffAndLeavesEvaluationAlone(string caseName)
    {
        using var scope = NewDisposeScope();
        var (peft, inputs) = Load(caseName, dropout: false);
        peft.GradientCheckpointingEnable();
        Assert.True(peft.Model.IsGradientCheckpointing);
        peft.eval();
        var checkpointed = peft.call(inputs).Logits;
        peft.Model.GradientCheckpointingDisable();
        Assert.False(peft.Model.IsGradientCheckpointing);
        Assert.True(checkpointed.equal(peft.call(inputs).Logits).all().item<bool>());
    }

    private sealed record StepResult(Dictionary<string, Tensor> Tensors, Dictionary<AdapterLayer, int> Calls, List<List<AdapterLayer>> Stacks);

    private StepResult Step(string caseName, bool checkpointing, int seed = 7)
    {
        var (peft, inputs) = Load(caseName, dropout: true);
        var calls = new Dictionary<AdapterLayer, int>(ReferenceEqualityComparer.Instance);
        // Distinct: the PEFT model reaches the base model's modules by more than one path.
        foreach (var adapted in peft.modules().OfType<AdapterLayer>().Distinct(ReferenceEqualityComparer.Instance).Cast<AdapterLayer>())
        {
            calls[adapted] = 0;
            adapted.register_forward_pre_hook((_, x) => { calls[adapted]++; return x; });
        }
        var stacks = peft.modules().OfType<IGradientCheckpointing>()
            .Select(stack => ((nn.Module)stack).modules().OfType<AdapterLayer>().ToList())
            .Where(layers => layers.Count > 0).ToList();
        if (checkpointing) peft.GradientCheckpointingEnable();
        peft.train();
        manual_seed(seed);
        var outputs = peft.call(inputs);
        // CLIP's text encoder is a feature extractor without a loss: any function of its features will do.
        var loss = outputs.Loss ?? outputs.Logits.square().mean();
        loss.backward();
        var result = new Dictionary<string, Tensor> { ["loss"] = loss.detach() };
        foreach (var (name, p) in peft.named_parameters().Where(p => p.parameter.requires_grad))
        {
            Assert.True(p.grad is not null, $"{caseName}: {name} got no gradient (checkpointing {checkpointing})");
            result["grad " + name] = p.grad!.detach();
        }
        return new StepResult(result, calls, stacks);
    }

    private (PeftModel Peft, ModelInputs Inputs) Load(string caseName, bool dropout)
    {
        var caseDirectory = Fixtures.Path("cases", caseName);
        using var meta = JsonDocument.Parse(File.ReadAllBytes(Path.Combine(caseDirectory, "meta.json")));
        // The reference has no task type for bare models and vision heads; the kind of inputs tells the head.
        var task = meta.RootElement.GetProperty("task_type").GetString() is { } taskName ? new TaskType(taskName) : meta.RootElement.GetProperty("input_kind").GetString() switch
        {
            "imgcls" => TaskType.ImageClassification,
            "seg" => TaskType.SemanticSegmentation,
            _ => TaskType.FeatureExtraction,
        };
        var modelDirectory = Fixtures.Path(meta.RootElement.GetProperty("base_model_dir").GetString()!);
        var adapterDirectory = Path.Combine(caseDirectory, "adapter");
        if (dropout)
        {
            modelDirectory = WithDropout(modelDirectory, "config.json", Path.Combine(_directory, caseName, "model"));
            adapterDirectory = WithDropout(adapterDirectory, "adapter_config.json", Path.Combine(_directory, caseName, "adapter"));
        }
        var model = PeftModels.Default.LoadPretrained(modelDirectory, task);
        var peft = PeftModels.Default.FromPretrained(model, adapterDirectory, isTrainable: true);
        var io = SafeTensors.Load(Path.Combine(caseDirectory, "io.safetensors"));
        var inputs = new ModelInputs
        {
            InputIds = io.GetValueOrDefault("input.input_ids"),
            AttentionMask = io.GetValueOrDefault("input.attention_mask"),
            Labels = io.GetValueOrDefault("input.labels"),
            DecoderInputIds = io.GetValueOrDefault("input.decoder_input_ids"),
            PixelValues = io.GetValueOrDefault("input.pixel_values"),
            Bbox = io.GetValueOrDefault("input.bbox"),
        };
        return (peft, inputs);
    }

    /// <summary>A copy of <paramref name="source"/> whose config sets every dropout rate to <see cref="Dropout"/>
    /// (layer drop, which skips whole layers, stays as it is).</summary>
    private static string WithDropout(string source, string configName, string target)
    {
        if (Directory.Exists(target)) return target;
        Directory.CreateDirectory(target);
        foreach (var file in Directory.GetFiles(source)) File.Copy(file, Path.Combine(target, Path.GetFileName(file)));
        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(source, configName)))!.AsObject();
        SetDropout(config);
        File.WriteAllText(Path.Combine(target, configName), config.ToJsonString());
        return target;
    }

    private static void SetDropout(JsonObject config)
    {
        foreach (var (key, value) in config.ToList())
        {
            if (value is JsonObject nested) SetDropout(nested);
            else if (key.Contains("drop", StringComparison.Ordinal) && !key.Contains("layerdrop", StringComparison.Ordinal)
                && value is JsonValue number && number.TryGetValue<double>(out _))
            {
                config[key] = Dropout;
            }
        }
    }
}
