using System.Diagnostics;
using System.Text.Json.Nodes;
using Peft.Modeling;
using Peft.Tests.Checkpoints;

namespace Peft.Tests.Reliability;

/// <summary>
/// Config sizes are checked before anything is allocated: positive, heads dividing the hidden size, and no larger than
/// the weights file's header can back; each hostile value is a typed error naming the file and the key, in milliseconds.
/// </summary>
public class HostileConfigTests
{
    private static readonly string Gpt2 = Fixtures.Path("models", "gpt2-clm");

    /// <summary>A copy of <paramref name="source"/> whose JSON file <paramref name="file"/> has <paramref name="key"/> set to <paramref name="value"/>.</summary>
    private static string Edited(ScratchDirectory scratch, string source, string file, string key, JsonNode value)
    {
        var copy = scratch.File(Path.GetFileName(source) + "-" + key);
        Directory.CreateDirectory(copy);
        foreach (var path in Directory.GetFiles(source)) File.Copy(path, Path.Combine(copy, Path.GetFileName(path)));
        var json = JsonNode.Parse(File.ReadAllText(Path.Combine(copy, file)))!;
        json[key] = value;
        File.WriteAllText(Path.Combine(copy, file), json.ToJsonString());
        return copy;
    }

    [Theory]
    [InlineData("vocab_size", 30_000_000L, "larger than every dimension")]
    [InlineData("n_layer", 100_000L, "layers, but the tensor names")]
    [InlineData("n_head", 0L, "must be positive")]
    [InlineData("n_layer", -1L, "must be positive")]
    [InlineData("n_embd", -16L, "must be positive")]
    [InlineData("n_head", 3L, "must be divisible by n_head")]
    [InlineData("n_inner", 1L << 20, "larger than every dimension")]
    public void AHostileModelConfigIsATypedErrorNamingFileAndKeyBeforeAnyAllocation(string key, long value, string expected)
    {
        using var scratch = new ScratchDirectory();
        var model = Edited(scratch, Gpt2, "config.json", key, JsonValue.Create(value));
        // The first call of the process would time the JIT and libtorch's start: the readers are warmed on the good model.
        PeftModels.Default.ReadConfig(Gpt2);
        Peft.Checkpoints.MappedCheckpoint.Open(Gpt2).Dispose();
        TorchSharp.torch.zeros(1).Dispose();
        var clock = Stopwatch.StartNew();
        var error = Assert.Throws<ModelConfigException>(() => PeftModels.Default.LoadPretrained(model, TaskType.CausalLM));
        clock.Stop();

        Assert.Contains(Path.Combine(model, "config.json"), error.Message, StringComparison.Ordinal);
        Assert.Contains($"'{key}'", error.Message, StringComparison.Ordinal);
        Assert.Contains(expected, error.Message, StringComparison.Ordinal);
        // Refused from the header: no model (let alone 3·10^7 × 16 floats or 10^5 layers) was built.
        Assert.True(clock.ElapsedMilliseconds < 2000, $"{clock.ElapsedMilliseconds} ms");
    }

    /// <summary>List-valued vision sizes are bounded entry by entry, like the scalar ones.</summary>
    [Theory]
    [InlineData("swin-imgcls", "depths", "[1, 100000]", "depths[1]")]
    [InlineData("swin-imgcls", "num_heads", "[2, 0]", "num_heads[1]")]
    [InlineData("swin-imgcls", "window_size", "10000", "window_size (its")]
    [InlineData("swin-imgcls", "embed_dim", "10000000", "embed_dim")]
    [InlineData("segformer-seg", "depths", "[100000, 1]", "depths[0]")]
    [InlineData("segformer-seg", "hidden_sizes", "[16, 10000000]", "hidden_sizes[1]")]
    [InlineData("segformer-seg", "num_attention_heads", "[1, -2]", "num_attention_heads[1]")]
    [InlineData("segformer-seg", "mlp_ratios", "[2, 1000000]", "mlp_ratios[1]")]
    [InlineData("segformer-seg", "sr_ratios", "[100000, 1]", "sr_ratios[0]")]
    public void AHostileVisionListIsATypedErrorNamingTheEntry(string modelName, string key, string value, string expected)
    {
        using var scratch = new ScratchDirectory();
        var model = Edited(scratch, Fixtures.Path("models", modelName), "config.json", key, JsonNode.Parse(value)!);
        var task = modelName.StartsWith("swin", StringComparison.Ordinal) ? TaskType.ImageClassification : TaskType.SemanticSegmentation;
        var clock = Stopwatch.StartNew();
        var error = Assert.Throws<ModelConfigException>(() => PeftModels.Default.LoadPretrained(model, task));
        Assert.True(clock.ElapsedMilliseconds < 2000, $"{clock.ElapsedMilliseconds} ms");
        Assert.Contains(Path.Combine(model, "config.json"), error.Message, StringComparison.Ordinal);
        Assert.Contains($"'{expected}", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void ARankOfAMillionBesideASmallAdapterIsRefusedNamingR()
    {
        using var scratch = new ScratchDirectory();
        var adapter = Edited(scratch, Fixtures.Path("cases", "gpt2-clm-lora", "adapter"), "adapter_config.json", "r", JsonValue.Create(1_000_000));
        var model = PeftModels.Default.LoadPretrained(Gpt2, TaskType.CausalLM);
        var clock = Stopwatch.StartNew();
        var error = Assert.Throws<PeftConfigException>(() => PeftModels.Default.FromPretrained(model, adapter));
        Assert.True(clock.ElapsedMilliseconds < 2000, $"{clock.ElapsedMilliseconds} ms");
        Assert.Contains(Path.Combine(adapter, "adapter_config.json"), error.Message, StringComparison.Ordinal);
        Assert.Contains("'r'", error.Message, StringComparison.Ordinal);
        Assert.Contains("adapter_model.safetensors", error.Message, StringComparison.Ordinal);
        // Nothing was attached: the model is still the plain model.
        Assert.DoesNotContain(model.modules(), m => m is IAdapterLayer);
    }

    /// <summary>Sizes nothing else bounds (a LoHa or VeRA rank, AdaLoRA's starting rank) are read against the adapter file's header.</summary>
    [Theory]
    [InlineData("llama-clm-loha", "r")]
    [InlineData("llama-clm-vera", "r")]
    [InlineData("gpt2-clm-adalora", "init_r")]
    public void EveryMethodsRankOfAMillionBesideASmallAdapterIsRefusedNamingTheKey(string @case, string key)
    {
        var (model, adapter, scratch) = HostileAdapter(@case, key);
        using (scratch)
        {
            var clock = Stopwatch.StartNew();
            var error = Assert.Throws<PeftConfigException>(() => PeftModels.Default.FromPretrained(model, adapter));
            Assert.True(clock.ElapsedMilliseconds < 2000, $"{clock.ElapsedMilliseconds} ms");
            Assert.Contains(Path.Combine(adapter, "adapter_config.json"), error.Message, StringComparison.Ordinal);
            Assert.Contains($"'{key}'", error.Message, StringComparison.Ordinal);
            Assert.Contains("adapter_model.safetensors", error.Message, StringComparison.Ordinal);
            Assert.DoesNotContain(model.modules(), m => m is IAdapterLayer);
        }
    }

    /// <summary>
    /// Sizes the layer bounds (FourierFT's frequencies, BOFT's block size) are refused by the layer's own check, and
    /// OFT's block size is moved to a divisor of in_features as the reference does: neither allocates past the layer,
    /// and the mismatched file is a typed error.
    /// </summary>
    [Theory]
    [InlineData("gpt2-clm-fourierft", "n_frequency", typeof(PeftConfigException))]
    [InlineData("llama-clm-boft", "boft_block_size", typeof(PeftConfigException))]
    [InlineData("llama-clm-oft", "oft_block_size", typeof(InvalidDataException))]
    public void SizesTheLayerBoundsAreRefusedWithoutAllocatingAMillion(string @case, string key, Type expected)
    {
        var (model, adapter, scratch) = HostileAdapter(@case, key);
        using (scratch)
        {
            var clock = Stopwatch.StartNew();
            var error = Assert.ThrowsAny<Exception>(() => PeftModels.Default.FromPretrained(model, adapter));
            Assert.True(clock.ElapsedMilliseconds < 2000, $"{clock.ElapsedMilliseconds} ms");
            Assert.IsType(expected, error);
            Assert.Contains(expected == typeof(PeftConfigException) ? key : "adapter_model.safetensors", error.Message, StringComparison.Ordinal);
        }
    }

    private static (Peft.Modeling.PreTrainedModel Model, string Adapter, ScratchDirectory Scratch) HostileAdapter(string @case, string key)
    {
        var scratch = new ScratchDirectory();
        var adapter = Edited(scratch, Fixtures.Path("cases", @case, "adapter"), "adapter_config.json", key, JsonValue.Create(1_000_000));
        var model = PeftModels.Default.LoadPretrained(Fixtures.Path("models", @case[..@case.LastIndexOf('-')]), TaskType.CausalLM);
        return (model, adapter, scratch);
    }

    [Fact]
    public void AHundredMillionVirtualTokensAreRefusedNamingTheKey()
    {
        using var scratch = new ScratchDirectory();
        var adapter = Edited(scratch, Fixtures.Path("cases", "gpt2-clm-prompt", "adapter"), "adapter_config.json", "num_virtual_tokens", JsonValue.Create(100_000_000));
        var model = PeftModels.Default.LoadPretrained(Gpt2, TaskType.CausalLM);
        var clock = Stopwatch.StartNew();
        var error = Assert.Throws<PeftConfigException>(() => PeftModels.Default.FromPretrained(model, adapter));
        Assert.True(clock.ElapsedMilliseconds < 2000, $"{clock.ElapsedMilliseconds} ms");
        Assert.Contains("'num_virtual_tokens'", error.Message, StringComparison.Ordinal);

        // The same adapter loads with its own value, and load_adapter checks as from_pretrained does.
        var good = PeftModels.Default.FromPretrained(PeftModels.Default.LoadPretrained(Gpt2, TaskType.CausalLM), Fixtures.Path("cases", "gpt2-clm-prompt", "adapter"));
        Assert.Throws<PeftConfigException>(() => good.LoadAdapter(adapter, "hostile"));
    }
}
