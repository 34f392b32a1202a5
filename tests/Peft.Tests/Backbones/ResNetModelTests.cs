using System.Text.Json;
using Peft.Backbones.ResNet;
using Peft.Checkpoints;
using Peft.Methods.Lora;
using Peft.Modeling;
using Peft.Tests.Checkpoints;
using Peft.Tuners;
using TorchSharp;
using static TorchSharp.torch;

namespace Peft.Tests.Backbones;

/// <summary>
/// ResNet (transformers' modeling_resnet.py): its module names, both layer types, LoRA on every convolution
/// with the head and BatchNorms as modules_to_save (merged = unmerged, and a save/load round trip that carries
/// the BatchNorms' running statistics).
/// </summary>
public class ResNetModelTests
{
    private static ResNetConfig Basic => new() { ModelType = "resnet", EmbeddingSize = 8, HiddenSizes = [8, 16], Depths = [1, 2], LayerType = "basic", NumLabelsValue = 3 };

    private static ResNetConfig Bottleneck => new() { ModelType = "resnet", EmbeddingSize = 8, HiddenSizes = [16, 32], Depths = [2, 1], LayerType = "bottleneck", NumLabelsValue = 3 };

    [Fact]
    public void BasicLayersHaveTransformersNamesAndShapes()
    {
        using var scope = torch.NewDisposeScope();
        var model = Build(Basic, seed: 1);
        var state = model.state_dict();

        Assert.Equal([8L, 3, 7, 7], state["resnet.embedder.embedder.convolution.weight"].shape);
        Assert.Contains("resnet.embedder.embedder.normalization.running_var", state.Keys);
        Assert.Contains("resnet.embedder.embedder.normalization.num_batches_tracked", state.Keys);
        Assert.DoesNotContain(state.Keys, k => k.StartsWith("resnet.encoder.stages.0.layers.0.shortcut", StringComparison.Ordinal)); // 8 → 8, stride 1
        Assert.Equal([16L, 8, 1, 1], state["resnet.encoder.stages.1.layers.0.shortcut.convolution.weight"].shape);
        Assert.Equal([16L, 8, 3, 3], state["resnet.encoder.stages.1.layers.0.layer.0.convolution.weight"].shape);
        Assert.Equal([16L, 16, 3, 3], state["resnet.encoder.stages.1.layers.1.layer.1.convolution.weight"].shape);
        Assert.Equal([3L, 16], state["classifier.1.weight"].shape);

        model.eval();
        var logits = model.call(new ModelInputs { PixelValues = torch.randn(2, 3, 40, 40) }).Logits;
        Assert.Equal([2L, 3], logits.shape);
    }

    [Fact]
    public void BottleneckLayersReduceToAQuarterAndProjectTheFirstShortcut()
    {
        using var scope = torch.NewDisposeScope();
        var model = Build(Bottleneck, seed: 2);
        var state = model.state_dict();

        Assert.Equal([4L, 8, 1, 1], state["resnet.encoder.stages.0.layers.0.layer.0.convolution.weight"].shape);
        Assert.Equal([4L, 4, 3, 3], state["resnet.encoder.stages.0.layers.0.layer.1.convolution.weight"].shape);
        Assert.Equal([16L, 4, 1, 1], state["resnet.encoder.stages.0.layers.0.layer.2.convolution.weight"].shape);
        Assert.Equal([16L, 8, 1, 1], state["resnet.encoder.stages.0.layers.0.shortcut.convolution.weight"].shape); // 8 → 16 channels
        Assert.DoesNotContain(state.Keys, k => k.StartsWith("resnet.encoder.stages.0.layers.1.shortcut", StringComparison.Ordinal));

        model.eval();
        var features = PeftModels.Default.Registry.Architecture("resnet").Build(Bottleneck, TaskType.FeatureExtraction);
        features.eval();
        Assert.Equal([1L, 32], features.call(new ModelInputs { PixelValues = torch.randn(1, 3, 32, 32) }).Logits.shape);
    }

    [Fact]
    public void AStageHalvesTheGridExceptTheFirst()
    {
        using var scope = torch.NewDisposeScope();
        var encoder = new ResNetEncoder(Basic);
        encoder.eval();
        // The stem and its pooling take 32 → 8; stage 0 keeps 8 × 8, stage 1 halves it.
        Assert.Equal([1L, 16, 4, 4], encoder.call(torch.randn(1, 8, 8, 8)).shape);
        var downsampling = new ResNetEncoder(Basic with { DownsampleInFirstStage = true });
        downsampling.eval();
        Assert.Equal([1L, 16, 2, 2], downsampling.call(torch.randn(1, 8, 8, 8)).shape);
    }

    [Theory]
    [InlineData("basic")]
    [InlineData("bottleneck")]
    public void LoraOnEveryConvolutionMergesExactly(string layerType)
    {
        using var scope = torch.NewDisposeScope();
        var config = layerType == "basic" ? Basic : Bottleneck;
        var peft = PeftModels.Default.GetPeftModel(Build(config, seed: 3), Lora());
        var convolutions = Build(config, seed: 3).named_modules().Count(m => m.module is TorchSharp.Modules.Conv2d);

        Assert.Equal(convolutions, peft.Model.named_modules().Count(m => m.module is LoraConv2d));
        peft.eval();
        var inputs = new ModelInputs { PixelValues = Pixels() };
        var unmerged = peft.call(inputs).Logits;
        var merged = peft.MergeAndUnload().call(inputs).Logits;
        AssertClose(unmerged, merged, 1e-5);
    }

    [Fact]
    public void TheAdapterCarriesTheBatchNormsRunningStatisticsAndReloadsToTheSameOutputs()
    {
        using var scope = torch.NewDisposeScope();
        using var scratch = new ScratchDirectory();
        var peft = PeftModels.Default.GetPeftModel(Build(Basic, seed: 4), Lora());
        // Training-mode passes move the BatchNorm copies' running statistics, as training does.
        peft.train();
        using (torch.no_grad())
        {
            for (var i = 0; i < 3; i++) peft.call(new ModelInputs { PixelValues = Pixels(seed: 20 + i).mul(3).add(1) });
        }
        peft.eval();
        var inputs = new ModelInputs { PixelValues = Pixels() };
        var trained = peft.call(inputs).Logits;
        peft.SavePretrained(scratch.Path);

        var saved = SafeTensors.ReadHeader(scratch.File("adapter_model.safetensors")).Tensors;
        Assert.Equal([2L, 3, 7, 7], saved["base_model.model.resnet.embedder.embedder.convolution.lora_A.weight"].Shape);
        Assert.Contains("base_model.model.resnet.encoder.stages.1.layers.0.shortcut.normalization.running_mean", saved.Keys);
        Assert.Contains("base_model.model.classifier.1.weight", saved.Keys);
        using var adapterConfig = JsonDocument.Parse(File.ReadAllText(scratch.File("adapter_config.json")));
        Assert.Equal(["classifier", "normalization"], adapterConfig.RootElement.GetProperty("modules_to_save").EnumerateArray().Select(e => e.GetString()));

        var loaded = PeftModels.Default.FromPretrained(Build(Basic, seed: 4), scratch.Path);
        loaded.eval();
        var fresh = Build(Basic, seed: 4);
        fresh.eval();
        Assert.True((fresh.call(inputs).Logits - trained).abs().max().item<float>() > 1e-3, "the adapter must change the outputs");
        AssertClose(trained, loaded.call(inputs).Logits, 1e-6);
    }

    [Fact]
    public void ABadConfigIsRefusedNamingItsKey()
    {
        var layerType = Assert.Throws<ModelConfigException>(() => (Basic with { LayerType = "wide" }).Validate("config.json"));
        Assert.Contains("'layer_type'", layerType.Message);
        var depths = Assert.Throws<ModelConfigException>(() => (Basic with { Depths = [1] }).Validate("config.json"));
        Assert.Contains("'depths'", depths.Message);
        var pixels = Assert.Throws<ArgumentException>(() => Build(Basic, seed: 5).call(new ModelInputs { PixelValues = torch.randn(1, 1, 32, 32) }));
        Assert.Contains("(batch, 3, height, width)", pixels.Message);
    }

    private static LoraConfig Lora() => new()
    {
        R = 2,
        LoraAlpha = 4,
        TargetModules = TargetModules.FromNames(["convolution"]),
        ModulesToSave = ["classifier", "normalization"],
        InitLoraWeights = JsonSerializer.SerializeToElement(false),   // non-zero B, so the adapter changes the outputs
    };

    private static PreTrainedModel Build(ResNetConfig config, int seed)
    {
        torch.manual_seed(seed);
        return PeftModels.Default.Registry.Architecture("resnet").Build(config, TaskType.ImageClassification);
    }

    private static Tensor Pixels(int seed = 11)
    {
        torch.manual_seed(seed);
        return torch.randn(2, 3, 32, 32);
    }

    private static void AssertClose(Tensor expected, Tensor actual, double tolerance)
    {
        Assert.Equal(expected.shape, actual.shape);
        var difference = (expected - actual).abs().max().item<float>();
        Assert.True(difference <= tolerance, $"max |difference| {difference} > {tolerance}");
    }
}
