using Peft.Checkpoints;
using Peft.Diffusion.Unet2DCondition;
using Peft.Methods.Lora;
using Peft.Modeling;
using Peft.Tests.Checkpoints;
using TorchSharp;
using static TorchSharp.torch;

namespace Peft.Tests.Diffusion;

/// <summary>LoRA on the UNet through GetPeftModel: its attention projections and convolutions, merging, and the keys diffusers + PEFT save.</summary>
public class UNetLoraTests
{
    private static Tensor Predict(nn.Module<ModelInputs, ModelOutputs> model, Tensor sample, Tensor context) =>
        model.call(new ModelInputs { PixelValues = sample, Timestep = torch.tensor(new long[] { 20, 700 }), EncoderHiddenStates = context }).Logits;

    [Fact]
    public void TargetsAttentionProjectionsAndConvolutions()
    {
        using var scope = torch.NewDisposeScope();
        var peft = PeftModels.Default.GetPeftModel(TinyUnet.Build(1), TinyUnet.Lora());
        var adapted = peft.Model.named_modules().Where(m => m.module is IAdapterLayer).Select(m => m.name).ToHashSet();
        Assert.Contains("down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q", adapted);
        Assert.Contains("down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_k", adapted);
        Assert.Contains("mid_block.attentions.0.transformer_blocks.0.attn2.to_out.0", adapted);
        Assert.Contains("up_blocks.0.resnets.1.conv1", adapted);
        Assert.DoesNotContain("down_blocks.0.attentions.0.transformer_blocks.0.ff.net.2", adapted);
        Assert.DoesNotContain("down_blocks.0.downsamplers.0.conv", adapted);
        // 4 transformers (down 0, mid, up 1 twice) × 2 attentions × 4 projections; 8 ResNets (1 + 1 down, 2 mid, 2 + 2 up) × 2 convolutions.
        Assert.Equal(4 * 2 * 4 + 8 * 2, adapted.Count);
        var trainable = peft.named_parameters().Where(p => p.parameter.requires_grad).Select(p => p.name).ToList();
        Assert.All(trainable, name => Assert.Contains(".lora_", name));
        // lora_A of a 3×3 convolution is a 3×3 convolution into r channels; lora_B a 1×1 one.
        var state = peft.ActiveAdapter.GetStateDict();
        Assert.Equal([4L, 8, 3, 3], state["base_model.model.down_blocks.0.resnets.0.conv1.lora_A.weight"].shape);
        Assert.Equal([8L, 4, 1, 1], state["base_model.model.down_blocks.0.resnets.0.conv1.lora_B.weight"].shape);
    }

    [Fact]
    public void MergedEqualsUnmerged()
    {
        using var scope = torch.NewDisposeScope();
        var peft = PeftModels.Default.GetPeftModel(TinyUnet.Build(2), TinyUnet.Lora(LoraInitWeights.Random));
        peft.eval();
        var sample = TinyUnet.Randn(2, 4, 8, 8);
        var context = TinyUnet.Context(2, 3);
        Tensor baseline;
        using (peft.DisableAdapter()) baseline = Predict(peft, sample, context);
        var unmerged = Predict(peft, sample, context);
        Assert.True((unmerged - baseline).abs().max().ToDouble() > 1e-3, "a random LoRA must change the prediction");

        peft.Merge();
        Assert.True((Predict(peft, sample, context) - unmerged).abs().max().ToDouble() < 1e-4);
        peft.Unmerge();
        Assert.True((Predict(peft, sample, context) - unmerged).abs().max().ToDouble() < 1e-5);
        var merged = peft.MergeAndUnload();
        Assert.DoesNotContain(merged.named_modules(), m => m.module is IAdapterLayer);
        Assert.True((Predict(merged, sample, context) - unmerged).abs().max().ToDouble() < 1e-4);
    }

    [Fact]
    public void SavedAdaptersHaveDiffusersAndPeftKeysAndLoadBack()
    {
        using var scope = torch.NewDisposeScope();
        using var scratch = new ScratchDirectory();
        var peft = PeftModels.Default.GetPeftModel(TinyUnet.Build(3), TinyUnet.Lora(LoraInitWeights.Random));
        peft.eval();
        var sample = TinyUnet.Randn(2, 4, 8, 8);
        var context = TinyUnet.Context(2, 4);
        var expected = Predict(peft, sample, context);
        peft.SavePretrained(scratch.Path);

        var keys = SafeTensors.ReadHeader(scratch.File("adapter_model.safetensors")).Tensors.Keys.ToHashSet();
        Assert.Contains("base_model.model.down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q.lora_A.weight", keys);
        Assert.Contains("base_model.model.down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_out.0.lora_B.weight", keys);
        Assert.Contains("base_model.model.up_blocks.1.attentions.1.transformer_blocks.0.attn2.to_v.lora_A.weight", keys);
        Assert.Contains("base_model.model.mid_block.resnets.0.conv2.lora_A.weight", keys);
        Assert.DoesNotContain(keys, k => k.Contains(".default.", StringComparison.Ordinal) || !k.StartsWith("base_model.model.", StringComparison.Ordinal));
        var config = System.Text.Json.JsonDocument.Parse(File.ReadAllText(scratch.File("adapter_config.json"))).RootElement;
        Assert.Equal("UNet2DConditionModel", config.GetProperty("auto_mapping").GetProperty("base_model_class").GetString());
        Assert.Equal("diffusers.models.unets.unet_2d_condition", config.GetProperty("auto_mapping").GetProperty("parent_library").GetString());

        var loaded = PeftModels.Default.FromPretrained(TinyUnet.Build(3), scratch.Path);
        loaded.eval();
        Assert.True((Predict(loaded, sample, context) - expected).abs().max().ToDouble() < 1e-6);
        Assert.Equal(peft.TrainableParametersLine(), PeftModels.Default.FromPretrained(TinyUnet.Build(3), scratch.Path, isTrainable: true).TrainableParametersLine());
    }

    [Fact]
    public void WithoutTargetModulesTheUnetIsRefusedAsInTheReference()
    {
        using var scope = torch.NewDisposeScope();
        var error = Assert.ThrowsAny<Exception>(() => PeftModels.Default.GetPeftModel(TinyUnet.Build(4), new LoraConfig { R = 2 }));
        Assert.Contains("target_modules", error.Message);
    }
}
