using System.Text.Json;
using Peft.Diffusion;
using Peft.Diffusion.Unet2DCondition;
using Peft.Modeling;
using Peft.Tests.Checkpoints;
using TorchSharp;
using static TorchSharp.torch;

namespace Peft.Tests.Diffusion;

/// <summary>
/// diffusers' UNet2DConditionModel at tiny size: module names, shapes, the timestep embedding, determinism, loading a
/// diffusers folder, and configs it refuses. No diffusers checkpoint is available offline, so nothing here compares with
/// diffusers' own numbers.
/// </summary>
public class UNet2DConditionModelTests
{
    [Fact]
    public void ParametersCarryDiffusersNames()
    {
        using var scope = torch.NewDisposeScope();
        var model = TinyUnet.Build(1);
        var shapes = model.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.shape);
        var block = "down_blocks.0.attentions.0.transformer_blocks.0";
        Assert.Equal([8L, 4, 3, 3], shapes["conv_in.weight"]);
        Assert.Equal([32L, 8], shapes["time_embedding.linear_1.weight"]);
        Assert.Equal([32L, 32], shapes["time_embedding.linear_2.weight"]);
        Assert.Equal([8L], shapes["down_blocks.0.resnets.0.norm1.weight"]);
        Assert.Equal([8L, 32], shapes["down_blocks.0.resnets.0.time_emb_proj.weight"]);
        Assert.Equal([8L, 8, 1, 1], shapes["down_blocks.0.attentions.0.proj_in.weight"]);
        Assert.Equal([8L, 8], shapes[$"{block}.attn1.to_q.weight"]);
        Assert.Equal([8L, TinyUnet.ContextDim], shapes[$"{block}.attn2.to_k.weight"]);
        Assert.Equal([8L, 8], shapes[$"{block}.attn2.to_out.0.weight"]);
        Assert.Equal([8L], shapes[$"{block}.attn2.to_out.0.bias"]);
        Assert.Equal([64L, 8], shapes[$"{block}.ff.net.0.proj.weight"]);
        Assert.Equal([8L, 32], shapes[$"{block}.ff.net.2.weight"]);
        Assert.Equal([8L], shapes[$"{block}.norm3.weight"]);
        Assert.Equal([8L, 8, 3, 3], shapes["down_blocks.0.downsamplers.0.conv.weight"]);
        Assert.Equal([16L, 8, 1, 1], shapes["down_blocks.1.resnets.0.conv_shortcut.weight"]);
        Assert.Equal([16L, 16, 1, 1], shapes["mid_block.attentions.0.proj_out.weight"]);
        Assert.Equal([16L, 16, 3, 3], shapes["mid_block.resnets.1.conv2.weight"]);
        // Up block 0 mirrors down block 1: its ResNets take 16 + 16 channels, the last one 16 + 8 (the skip from below).
        Assert.Equal([16L, 32, 3, 3], shapes["up_blocks.0.resnets.0.conv1.weight"]);
        Assert.Equal([16L, 24, 3, 3], shapes["up_blocks.0.resnets.1.conv1.weight"]);
        Assert.Equal([16L, 16, 3, 3], shapes["up_blocks.0.upsamplers.0.conv.weight"]);
        Assert.Equal([8L, 24, 1, 1], shapes["up_blocks.1.resnets.0.conv_shortcut.weight"]);
        Assert.Equal([8L, 8], shapes["up_blocks.1.attentions.1.transformer_blocks.0.attn1.to_v.weight"]);
        Assert.Equal([8L], shapes["conv_norm_out.weight"]);
        Assert.Equal([4L, 8, 3, 3], shapes["conv_out.weight"]);
        // diffusers' attention has bias-free q/k/v projections; up blocks have no downsamplers and the last none to upsample.
        Assert.DoesNotContain($"{block}.attn1.to_q.bias", shapes.Keys);
        Assert.DoesNotContain(shapes.Keys, k => k.StartsWith("up_blocks.1.upsamplers", StringComparison.Ordinal) || k.StartsWith("down_blocks.1.downsamplers", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData(8, 8)]
    [InlineData(7, 10)]     // not divisible by the UNet's downsampling: upsamplers follow the skips' sizes, as diffusers' forward_upsample_size
    public void PredictsNoiseOfTheSampleShape(int height, int width)
    {
        using var scope = torch.NewDisposeScope();
        var model = TinyUnet.Build(2);
        var sample = TinyUnet.Randn(3, 4, height, width);
        var output = model.call(new ModelInputs { PixelValues = sample, Timestep = torch.tensor(new long[] { 1, 500, 999 }), EncoderHiddenStates = TinyUnet.Context(3, 3) });
        Assert.Equal([3L, 4, height, width], output.Logits.shape);
        if (!output.Logits.isfinite().all().item<bool>())
        {
            foreach (var (n, p) in model.named_parameters())
                if (!p.isfinite().all().item<bool>() || p.abs().max().ToDouble() > 5) Console.WriteLine("BAD " + n + " " + p.abs().max().ToDouble());
            Console.WriteLine("SAMPLE " + sample.isfinite().all().item<bool>() + " grad " + torch.is_grad_enabled());
        }
        Assert.True(output.Logits.isfinite().all().item<bool>());
        Assert.Null(output.Loss);
    }

    [Fact]
    public void IsDeterministicAndReadsTimestepAndContext()
    {
        using var scope = torch.NewDisposeScope();
        torch.manual_seed(9);
        var sample = TinyUnet.Randn(2, 4, 8, 8);
        var context = TinyUnet.Context(2, 4);
        var a = TinyUnet.Build(5).Denoise(sample, torch.tensor(10L), context);
        var b = TinyUnet.Build(5).Denoise(sample, torch.tensor(10L), context);
        Assert.Equal(0.0, (a - b).abs().max().ToDouble());
        // A scalar timestep is the same as one per sample; another timestep or context changes the prediction.
        var model = TinyUnet.Build(5);
        Assert.Equal(0.0, (a - model.Denoise(sample, torch.tensor(new long[] { 10, 10 }), context)).abs().max().ToDouble());
        Assert.True((a - model.Denoise(sample, torch.tensor(900L), context)).abs().max().ToDouble() > 1e-4);
        Assert.True((a - model.Denoise(sample, torch.tensor(10L), TinyUnet.Context(2, 5))).abs().max().ToDouble() > 1e-4);
        // A padding mask over the text tokens is diffusers' encoder_attention_mask: masking tokens changes the result.
        var mask = torch.tensor(new long[] { 1, 1, 0, 0, 0, 1, 1, 1, 1, 1 }).reshape(2, 5);
        var masked = model.Denoise(sample, torch.tensor(10L), context, mask);
        Assert.True((a[0] - masked[0]).abs().max().ToDouble() > 1e-5);
        Assert.True((a[1] - masked[1]).abs().max().ToDouble() < 1e-5);
    }

    [Fact]
    public void TimestepEmbeddingIsDiffusersSinusoid()
    {
        using var scope = torch.NewDisposeScope();
        foreach (var (flip, shift) in new[] { (true, 0), (false, 1) })
        {
            var embedding = new Timesteps(6, flip, shift).call(torch.tensor(new long[] { 0, 3, 999 }));
            for (int row = 0; row < 3; row++)
            {
                var t = new[] { 0.0, 3.0, 999.0 }[row];
                for (int i = 0; i < 3; i++)
                {
                    // exp(−ln(10000)·i / (half − shift)) · t, sines then cosines (cosines first when flipped).
                    var angle = t * Math.Exp(-Math.Log(10000) * i / (3 - shift));
                    var (first, second) = flip ? (Math.Cos(angle), Math.Sin(angle)) : (Math.Sin(angle), Math.Cos(angle));
                    Assert.Equal(first, embedding[row, i].ToDouble(), 3e-4);
                    Assert.Equal(second, embedding[row, i + 3].ToDouble(), 3e-4);
                }
            }
        }
    }

    [Fact]
    public void LossIsTheMeanSquaredErrorAgainstTheLabels()
    {
        using var scope = torch.NewDisposeScope();
        var model = TinyUnet.Build(6);
        var sample = TinyUnet.Randn(2, 4, 8, 8);
        var target = TinyUnet.Randn(2, 4, 8, 8);
        var output = model.call(new ModelInputs { PixelValues = sample, Timestep = torch.tensor(7L), EncoderHiddenStates = TinyUnet.Context(2, 1), Labels = target });
        var expected = (output.Logits - target).pow(2).mean().ToDouble();
        Assert.Equal(expected, output.Loss!.ToDouble(), 6);
    }

    [Fact]
    public void ADiffusersFolderRoundTrips()
    {
        using var scope = torch.NewDisposeScope();
        using var scratch = new ScratchDirectory();
        var model = TinyUnet.Build(7, TinyUnet.Config() with { UseLinearProjection = true, ResnetTimeScaleShift = "scale_shift", FreqShift = 1 });
        DiffusersModels.SaveUnet(model, scratch.Path);
        var config = JsonDocument.Parse(File.ReadAllText(scratch.File("config.json"))).RootElement;
        Assert.Equal("UNet2DConditionModel", config.GetProperty("_class_name").GetString());
        Assert.False(config.TryGetProperty("model_type", out _));
        Assert.Equal(2, config.GetProperty("attention_head_dim").GetInt32());
        Assert.True(File.Exists(scratch.File("diffusion_pytorch_model.safetensors")));

        var loaded = DiffusersModels.LoadUnet(scratch.Path, dtype: TinyUnet.DType);
        Assert.True(loaded.Unet.UseLinearProjection);
        var sample = TinyUnet.Randn(1, 4, 8, 8);
        var context = TinyUnet.Context(1, 2);
        Assert.Equal(0.0, (model.Denoise(sample, torch.tensor(3L), context) - loaded.Denoise(sample, torch.tensor(3L), context)).abs().max().ToDouble());
        Assert.Equal([8L, 8], loaded.state_dict()["down_blocks.0.attentions.0.proj_in.weight"].shape);   // Linear, Stable Diffusion 2's layout
    }

    [Fact]
    public void ADiffusersConfigWithListsAndDefaultsParses()
    {
        using var scratch = new ScratchDirectory();
        File.WriteAllText(scratch.File("config.json"), """
            {"_class_name": "UNet2DConditionModel", "_diffusers_version": "0.6.0", "attention_head_dim": [1, 2],
             "block_out_channels": [8, 16], "cross_attention_dim": 12, "down_block_types": ["CrossAttnDownBlock2D", "DownBlock2D"],
             "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D"], "layers_per_block": 1, "norm_num_groups": 4, "sample_size": 8,
             "class_embed_type": null, "dual_cross_attention": false, "only_cross_attention": [false, false], "time_embedding_type": "positional"}
            """);
        var config = DiffusersModels.ReadUnetConfig(scratch.File("config.json"));
        Assert.Equal([1, 2], config.AttentionHeadDim.Values);
        Assert.Equal(12, config.CrossAttentionDim.At(1));
        Assert.Equal(4, config.InChannels);
        Assert.True(config.FlipSinToCos);
    }

    [Theory]
    [InlineData("\"down_block_types\": [\"AttnDownBlock2D\", \"DownBlock2D\"]", "AttnDownBlock2D")]
    [InlineData("\"up_block_types\": [\"UpBlock2D\", \"SimpleCrossAttnUpBlock2D\"]", "SimpleCrossAttnUpBlock2D")]
    [InlineData("\"mid_block_type\": \"UNetMidBlock2DSimpleCrossAttn\"", "UNetMidBlock2DSimpleCrossAttn")]
    [InlineData("\"class_embed_type\": \"timestep\"", "class_embed_type")]
    [InlineData("\"addition_embed_type\": \"text_time\"", "addition_embed_type")]
    [InlineData("\"only_cross_attention\": [true, false]", "only_cross_attention")]
    [InlineData("\"attention_head_dim\": [1, 2, 3]", "attention_head_dim")]
    [InlineData("\"act_fn\": \"mish\"", "act_fn")]
    [InlineData("\"transformer_layers_per_block\": [[1, 2], [1, 2]]", "transformer_layers_per_block")]
    public void UnsupportedConfigsAreRefusedByName(string entry, string named)
    {
        using var scratch = new ScratchDirectory();
        var defaults = new Dictionary<string, string>
        {
            ["down_block_types"] = "[\"CrossAttnDownBlock2D\", \"DownBlock2D\"]",
            ["up_block_types"] = "[\"UpBlock2D\", \"CrossAttnUpBlock2D\"]",
            ["block_out_channels"] = "[8, 16]",
            ["norm_num_groups"] = "4",
        };
        var key = entry[1..entry.IndexOf('"', 1)];
        defaults.Remove(key);
        var json = "{" + string.Join(", ", defaults.Select(kv => $"\"{kv.Key}\": {kv.Value}").Append(entry)) + "}";
        File.WriteAllText(scratch.File("config.json"), json);
        var error = Assert.Throws<ModelConfigException>(() => DiffusersModels.ReadUnetConfig(scratch.File("config.json")));
        Assert.Contains(named, error.Message);
    }

    [Fact]
    public void ACodeBuiltConfigIsCheckedToo()
    {
        var error = Assert.Throws<ModelConfigException>(() => new UNet2DConditionModel(TinyUnet.Config() with { DownBlockTypes = ["CrossAttnDownBlock2D", "KDownBlock2D"] }));
        Assert.Contains("KDownBlock2D", error.Message);
        Assert.Contains("down_block_types", error.Message);
    }
}
