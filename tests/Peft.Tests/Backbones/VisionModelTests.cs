using System.Text.Json.Nodes;
using Peft.Backbones.Vit;
using Peft.Checkpoints;
using Peft.Modeling;
using Peft.Tests.Checkpoints;
using TorchSharp;
using static TorchSharp.torch;

namespace Peft.Tests.Backbones;

/// <summary>
/// The vision architectures beyond the reference cases: both spellings of module names load
/// (transformers 4's classic ones and transformers 5's run-time ones), ViT's positions for other
/// image sizes, LoRA on a patch convolution.
/// </summary>
public class VisionModelTests
{
    private static readonly string VitModel = Fixtures.Path("models", "vit-imgcls");
    private static readonly string VitLoraAdapter = Fixtures.Path("cases", "vit-imgcls-lora", "adapter");

    [Fact]
    public void ViTCheckpointsLoadInEitherSpelling()
    {
        using var scope = torch.NewDisposeScope();
        using var scratch = new ScratchDirectory();
        var pixels = Pixels();
        var classic = PeftModels.Default.LoadPretrained(VitModel, TaskType.ImageClassification);
        // The fixture checkpoint is classic (vit.encoder.layer.0.attention.attention.query); write it in run-time names.
        var weights = SafeTensors.Load(Path.Combine(VitModel, "model.safetensors"));
        Assert.Contains("vit.encoder.layer.0.attention.attention.query.weight", weights.Keys);
        SafeTensors.Save(scratch.File("model.safetensors"), weights.ToDictionary(kv => ViTArchitecture.ClassicNames.ToCurrent(kv.Key), kv => kv.Value));
        File.Copy(Path.Combine(VitModel, "config.json"), scratch.File("config.json"));
        var current = PeftModels.Default.LoadPretrained(scratch.Path, TaskType.ImageClassification);

        Assert.Contains("vit.layers.0.attention.q_proj.weight", current.state_dict().Keys);
        AssertEqual(classic.call(new ModelInputs { PixelValues = pixels }).Logits, current.call(new ModelInputs { PixelValues = pixels }).Logits);
    }

    [Fact]
    public void AdaptersSavedWithClassicNamesLoadAsTheRunTimeOnes()
    {
        using var scope = torch.NewDisposeScope();
        using var scratch = new ScratchDirectory();
        var inputs = new ModelInputs { PixelValues = Pixels() };
        // A transformers 4 adapter: classic keys, and targets named as transformers 4 named the modules.
        var state = SafeTensors.Load(Path.Combine(VitLoraAdapter, "adapter_model.safetensors"));
        SafeTensors.Save(scratch.File("adapter_model.safetensors"), state.ToDictionary(kv => ViTArchitecture.ClassicNames.ToClassic(kv.Key), kv => kv.Value));
        Assert.Contains("base_model.model.vit.encoder.layer.0.attention.attention.query.lora_A.weight", SafeTensors.ReadHeader(scratch.File("adapter_model.safetensors")).Tensors.Keys);
        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(VitLoraAdapter, "adapter_config.json")))!;
        config["target_modules"] = new JsonArray("query", "key", "value", "dense");
        File.WriteAllText(scratch.File("adapter_config.json"), config.ToJsonString());

        var base_ = PeftModels.Default.LoadPretrained(VitModel, TaskType.ImageClassification);
        var baseLogits = base_.call(inputs).Logits;
        var current = PeftModels.Default.FromPretrained(base_, VitLoraAdapter);
        var classic = PeftModels.Default.FromPretrained(PeftModels.Default.LoadPretrained(VitModel, TaskType.ImageClassification), scratch.Path);

        Assert.Equal(current.TrainableParametersLine(), classic.TrainableParametersLine());
        Assert.Equal(current.Model.named_modules().Count(m => m.module is IAdapterLayer), classic.Model.named_modules().Count(m => m.module is IAdapterLayer));
        var adapted = current.call(inputs).Logits;
        Assert.True((adapted - baseLogits).abs().max().item<float>() > 1e-3, "the adapter must change the logits");
        AssertEqual(adapted, classic.call(inputs).Logits);
    }

    [Fact]
    public void ViTInterpolatesItsPatchPositionsForOtherImageSizes()
    {
        using var scope = torch.NewDisposeScope();
        torch.manual_seed(5);
        var config = new ViTConfig { HiddenSize = 8, NumHiddenLayers = 1, NumAttentionHeads = 2, IntermediateSize = 16, ImageSize = 16, PatchSize = 4, NumLabelsValue = 2 };
        var embeddings = new ViTEmbeddings(config);
        var positions = embeddings.named_parameters().Single(p => p.name == "position_embeddings").parameter;
        using (torch.no_grad())
        {
            // A constant patch grid stays constant under any bicubic resize.
            positions[.., 1..].copy_(torch.arange(8, dtype: ScalarType.Float32).expand(1, 16, 8));
        }
        var pixels = torch.randn(2, 3, 24, 32);                                  // a 6 × 8 grid instead of 4 × 4
        var added = embeddings.call(pixels) - Unpositioned(embeddings, pixels);

        Assert.Equal([2L, 1 + 48, 8], added.shape);
        AssertEqual(positions[.., 0].expand(2, 8), added[.., 0]);
        AssertEqual(torch.arange(8, dtype: ScalarType.Float32).expand(2, 48, 8), added[.., 1..]);
        var model = new ViTForImageClassification(config);
        Assert.Equal([2L, 2], model.call(new ModelInputs { PixelValues = pixels }).Logits.shape);
        Assert.Throws<ArgumentException>(() => model.call(new ModelInputs()));
    }

    [Fact]
    public void LoraOnThePatchConvolutionSavesConvolutionShapedWeightsAndMergesExactly()
    {
        using var scope = torch.NewDisposeScope();
        using var scratch = new ScratchDirectory();
        var inputs = new ModelInputs { PixelValues = Pixels() };
        var config = new Peft.Methods.Lora.LoraConfig
        {
            R = 2,
            LoraAlpha = 4,
            TargetModules = Tuners.TargetModules.FromNames(["projection", "q_proj"]),
            InitLoraWeights = System.Text.Json.JsonSerializer.SerializeToElement(false),
        };
        var peft = PeftModels.Default.GetPeftModel(PeftModels.Default.LoadPretrained(VitModel, TaskType.ImageClassification), config);
        peft.SavePretrained(scratch.Path);
        var saved = SafeTensors.ReadHeader(scratch.File("adapter_model.safetensors")).Tensors;
        Assert.Equal([2L, 3, 8, 8], saved["base_model.model.vit.embeddings.patch_embeddings.projection.lora_A.weight"].Shape);
        Assert.Equal([32L, 2, 1, 1], saved["base_model.model.vit.embeddings.patch_embeddings.projection.lora_B.weight"].Shape);

        var loaded = PeftModels.Default.FromPretrained(PeftModels.Default.LoadPretrained(VitModel, TaskType.ImageClassification), scratch.Path);
        var unmerged = loaded.call(inputs).Logits;
        AssertEqual(peft.call(inputs).Logits, unmerged);
        AssertEqual(unmerged, loaded.MergeAndUnload().call(inputs).Logits, 1e-5);
    }

    private static Tensor Pixels()
    {
        torch.manual_seed(11);
        return torch.randn(2, 3, 32, 32);
    }

    /// <summary>[CLS; patches] without positions, from the embeddings' own parameters.</summary>
    private static Tensor Unpositioned(ViTEmbeddings embeddings, Tensor pixels)
    {
        var cls = embeddings.named_parameters().Single(p => p.name == "cls_token").parameter.expand(pixels.shape[0], -1, -1);
        var patches = ((nn.Module<Tensor, Tensor>)embeddings.named_children().Single(c => c.name == "patch_embeddings").module).call(pixels);
        return torch.cat([cls, patches], 1);
    }

    private static void AssertEqual(Tensor expected, Tensor actual, double tolerance = 1e-6)
    {
        Assert.Equal(expected.shape, actual.shape);
        var difference = (expected - actual).abs().max().item<float>();
        Assert.True(difference <= tolerance, $"max |difference| {difference} > {tolerance}");
    }
}
