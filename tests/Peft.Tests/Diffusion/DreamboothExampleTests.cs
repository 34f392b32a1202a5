using Peft.Backbones.ClipText;
using Peft.Checkpoints;
using Peft.Diffusion.Dreambooth;
using Peft.Diffusion.Sampling;
using Peft.Diffusion.Schedulers;
using Peft.Methods.Lora;
using Peft.Tests.Checkpoints;
using TorchSharp;
using static TorchSharp.torch;

namespace Peft.Tests.Diffusion;

/// <summary>
/// The Dreambooth-style example of docs/DIFFUSION.md at tiny size on the CPU: a random tiny UNet and CLIP text encoder,
/// four 8×8 "instance" images of one pattern and four "class" images of another, LoRA on the UNet, a few dozen steps.
/// It shows the loop works and learns; a random tiny model generates nothing recognisable.
/// </summary>
public class DreamboothExampleTests
{
    private static readonly string[] Vocabulary = ["<bos>", "<eos>", "a", "photo", "of", "sks", "dog"];

    /// <summary>A word-level stand-in for CLIP's BPE tokenizer, enough for a random tiny text encoder: bos, words, eos, padded with eos to 8 as the pipeline pads to 77.</summary>
    private static Tensor Tokenize(string prompt)
    {
        var words = prompt.Split(' ', StringSplitOptions.RemoveEmptyEntries).Select(w => (long)Array.IndexOf(Vocabulary, w));
        var ids = new long[] { 0 }.Concat(words).Append(1).ToList();
        while (ids.Count < 8) ids.Add(1);
        return torch.tensor(ids.ToArray()).unsqueeze(0);
    }

    private static ClipTextModel TextEncoder()
    {
        torch.manual_seed(11);
        var encoder = new ClipTextModel(new ClipTextConfig
        {
            VocabSize = Vocabulary.Length, HiddenSize = TinyUnet.ContextDim, NumHiddenLayers = 1, NumAttentionHeads = 2, IntermediateSize = 24, MaxPositionEmbeddings = 8,
        });
        foreach (var p in encoder.parameters()) p.requires_grad = false;
        encoder.to(TinyUnet.DType);
        encoder.eval();
        return encoder;
    }

    /// <summary>Instance images: a bright square; class images: stripes. Both fixed, (4, 4, 8, 8), roughly unit scale.</summary>
    private static (Tensor Instance, Tensor Class) Images()
    {
        var instance = torch.full(4, 4, 8, 8, -0.5f);
        instance[.., .., 2..6, 2..6] = torch.tensor(1.0f);
        var stripes = torch.arange(8, dtype: ScalarType.Float32).remainder(2).mul(2).sub(1).expand(4, 4, 8, 8).contiguous();
        torch.manual_seed(12);
        return ((instance + 0.05 * torch.randn(4, 4, 8, 8)).to(TinyUnet.DType), (stripes + 0.05 * torch.randn(4, 4, 8, 8)).to(TinyUnet.DType));
    }

    [Fact]
    public void LoraOnATinyUnetLowersTheDenoisingLoss()
    {
        using var scope = torch.NewDisposeScope();
        var (instance, _) = Images();
        var text = TextEncoder();
        var ids = Tokenize("a photo of sks dog");
        using var scheduler = new DdpmScheduler(new NoiseScheduleConfig { BetaSchedule = "scaled_linear", BetaStart = 0.00085, BetaEnd = 0.012 });
        var peft = PeftModels.Default.GetPeftModel(TinyUnet.Build(21), TinyUnet.Lora());
        var context = DreamboothTrainer.Encode(text, ids);
        var before = DreamboothTrainer.Evaluate(peft, scheduler, instance, context, seed: 5);

        var result = DreamboothTrainer.Train(peft, text, scheduler, new DreamboothData(instance, ids),
            new DreamboothOptions { Steps = 40, BatchSize = 4, LearningRate = 1e-2, Seed = 3 });

        var after = DreamboothTrainer.Evaluate(peft, scheduler, instance, context, seed: 5);
        Assert.Equal(40, result.Losses.Count);
        Assert.Empty(result.PriorLosses);
        Assert.True(after < 0.8 * before, $"the held-out denoising loss went from {before:F4} to {after:F4}");
        // The base weights did not move: only LoRA trained.
        using (peft.DisableAdapter())
        {
            Assert.Equal(DreamboothTrainer.Evaluate(TinyUnet.Build(21), scheduler, instance, context, seed: 5), DreamboothTrainer.Evaluate(peft, scheduler, instance, context, seed: 5), 6);
        }
    }

    [Fact]
    public void PriorPreservationAddsTheWeightedClassLossAndTheAdapterSavesAndGenerates()
    {
        using var scope = torch.NewDisposeScope();
        using var scratch = new ScratchDirectory();
        var (instance, classImages) = Images();
        var text = TextEncoder();
        var config = new NoiseScheduleConfig { BetaSchedule = "scaled_linear", BetaStart = 0.00085, BetaEnd = 0.012, StepsOffset = 1, ClipSample = false, SetAlphaToOne = false };
        using var scheduler = new DdpmScheduler(config);
        var peft = PeftModels.Default.GetPeftModel(TinyUnet.Build(22), TinyUnet.Lora());
        var data = new DreamboothData(instance, Tokenize("a photo of sks dog"), classImages, Tokenize("a photo of dog"));
        var options = new DreamboothOptions { Steps = 6, BatchSize = 2, LearningRate = 1e-3, WithPriorPreservation = true, PriorLossWeight = 0.5, Seed = 4 };

        var result = DreamboothTrainer.Train(peft, text, scheduler, data, options);
        Assert.Equal(6, result.PriorLosses.Count);
        for (int i = 0; i < 6; i++) Assert.Equal(result.InstanceLosses[i] + 0.5 * result.PriorLosses[i], result.Losses[i], 5);
        // The same seed gives the same run.
        var again = DreamboothTrainer.Train(PeftModels.Default.GetPeftModel(TinyUnet.Build(22), TinyUnet.Lora()), text, scheduler, data, options);
        Assert.Equal(result.Losses, again.Losses);

        peft.SavePretrained(scratch.Path);
        Assert.Contains("base_model.model.up_blocks.1.attentions.0.transformer_blocks.0.attn2.to_k.lora_B.weight",
            SafeTensors.ReadHeader(scratch.File("adapter_model.safetensors")).Tensors.Keys);

        using var ddim = new DdimScheduler(config);
        var prompt = DreamboothTrainer.Encode(text, Tokenize("a photo of sks dog"));
        var empty = DreamboothTrainer.Encode(text, Tokenize(""));
        var image = DdimSampling.Generate(peft, ddim, prompt, [2, 4, 8, 8], steps: 5, seed: 7, unconditional: empty, guidanceScale: 3.0);
        Assert.Equal([2L, 4, 8, 8], image.shape);
        Assert.True(image.isfinite().all().item<bool>());
        Assert.Equal(0.0, (image - DdimSampling.Generate(peft, ddim, prompt, [2, 4, 8, 8], steps: 5, seed: 7, unconditional: empty, guidanceScale: 3.0)).abs().max().ToDouble());
    }

    [Fact]
    public void OptionsThatWouldBeIgnoredAreRefused()
    {
        using var scope = torch.NewDisposeScope();
        var (instance, classImages) = Images();
        var text = TextEncoder();
        using var scheduler = new DdpmScheduler(new NoiseScheduleConfig());
        var peft = PeftModels.Default.GetPeftModel(TinyUnet.Build(23), TinyUnet.Lora());
        var ids = Tokenize("a photo of sks dog");
        Assert.Contains("WithPriorPreservation", Assert.Throws<ArgumentException>(() => DreamboothTrainer.Train(peft, text, scheduler,
            new DreamboothData(instance, ids), new DreamboothOptions { Steps = 1, WithPriorPreservation = true })).Message);
        Assert.Contains("WithPriorPreservation", Assert.Throws<ArgumentException>(() => DreamboothTrainer.Train(peft, text, scheduler,
            new DreamboothData(instance, ids, classImages, ids), new DreamboothOptions { Steps = 1 })).Message);
        Assert.Contains("Nothing to train", Assert.Throws<ArgumentException>(() => DreamboothTrainer.Train(TinyUnet.Frozen(TinyUnet.Build(24)), text, scheduler,
            new DreamboothData(instance, ids), new DreamboothOptions { Steps = 1 })).Message);
        using var ddim = new DdimScheduler(new NoiseScheduleConfig());
        Assert.Contains("guidanceScale", Assert.Throws<ArgumentException>(() => DdimSampling.Generate(peft, ddim, DreamboothTrainer.Encode(text, ids), [1, 4, 8, 8], 2, 0, guidanceScale: 5)).Message);
    }
}
