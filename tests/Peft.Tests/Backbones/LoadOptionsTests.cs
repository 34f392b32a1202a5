using System.Text.Json.Nodes;
using Peft.Checkpoints;
using Peft.Modeling;
using Peft.Plugins;
using Peft.Tests.Checkpoints;
using TorchSharp;
using static TorchSharp.torch;

namespace Peft.Tests.Backbones;

/// <summary>
/// <see cref="ModelLoadOptions"/>: the dtype and device a model loads in, built without initialising what the
/// checkpoint provides and filled from the memory-mapped files.
/// </summary>
public class LoadOptionsTests
{
    public static TheoryData<string, TaskType> EveryArchitecture() => new()
    {
        { "bart-s2s", TaskType.Seq2SeqLM }, { "bert-seqcls", TaskType.SequenceClassification }, { "bloom-clm", TaskType.CausalLM },
        { "clip_text-feat", TaskType.FeatureExtraction }, { "deberta-seqcls", TaskType.SequenceClassification },
        { "deberta_v2-tokcls", TaskType.TokenClassification }, { "gpt2-clm", TaskType.CausalLM }, { "gpt_neo-clm", TaskType.CausalLM },
        { "gpt_neox-clm", TaskType.CausalLM }, { "gptj-clm", TaskType.CausalLM }, { "layoutlm-tokcls", TaskType.TokenClassification },
        { "llama-clm", TaskType.CausalLM }, { "mt5-s2s", TaskType.Seq2SeqLM }, { "opt-clm", TaskType.CausalLM },
        { "roberta-seqcls", TaskType.SequenceClassification }, { "t5-s2s", TaskType.Seq2SeqLM },
    };

    [Theory]
    [MemberData(nameof(EveryArchitecture))]
    public void EveryWeightIsTheCheckpointsInTheAskedDtype(string model, TaskType task)
    {
        using var scope = NewDisposeScope();
        var directory = Fixtures.Path("models", model);
        var stored = ModelWeights.Load(directory);
        // Built normally and then filled, and built on the meta device (the suite runs one test at a time).
        foreach (var lowMemory in new[] { false, true })
        {
            var loaded = PeftModels.Default.LoadPretrained(directory, task, new ModelLoadOptions { DType = ModelDType.BFloat16, LowCpuMemoryUsage = lowMemory });

            var prefix = loaded.BaseModelPrefix is { } p && !stored.Keys.Any(k => k.StartsWith(p + ".", StringComparison.Ordinal)) ? p + "." : "";
            var compared = 0;
            foreach (var (name, tensor) in loaded.state_dict())
            {
                Assert.Equal(DeviceType.CPU, tensor.device_type);
                if (tensor.is_floating_point()) Assert.Equal(ScalarType.BFloat16, tensor.dtype);
                var key = name.StartsWith(prefix, StringComparison.Ordinal) ? name[prefix.Length..] : name;
                if (!stored.TryGetValue(key, out var expected)) continue;
                Assert.True(tensor.equal(expected.to(tensor.dtype)).all().item<bool>(), $"{model} (low memory {lowMemory}): {name} differs from the checkpoint");
                compared++;
            }
            Assert.True(compared > stored.Count / 2, $"{model}: only {compared} of {stored.Count} weights compared");
            Assert.False(loaded.training);
        }
    }

    [Fact]
    public void AutoTakesTheConfigsDtypeThenTheFirstWeights()
    {
        using var scope = NewDisposeScope();
        using var named = new ScratchDirectory();
        var model = DecoderFixtures.LoadWith("llama-clm", named, c => c["dtype"] = "bfloat16");
        Assert.Equal(ScalarType.Float32, model.parameters().First().dtype);   // the default is float32, whatever config.json says
        var auto = new ModelLoadOptions { DType = ModelDType.Auto };
        Assert.All(PeftModels.Default.LoadPretrained(named.Path, TaskType.CausalLM, auto).parameters(), p => Assert.Equal(ScalarType.BFloat16, p.dtype));

        using var legacy = new ScratchDirectory();
        DecoderFixtures.LoadWith("llama-clm", legacy, c => { c.Remove("dtype"); c["torch_dtype"] = "float16"; });
        Assert.All(PeftModels.Default.LoadPretrained(legacy.Path, TaskType.CausalLM, auto).parameters(), p => Assert.Equal(ScalarType.Float16, p.dtype));

        // No dtype in config.json: the checkpoint's first floating-point weight decides (here a bf16 save).
        using var bare = new ScratchDirectory();
        var weights = ModelWeights.Load(Fixtures.Path("models", "llama-clm")).ToDictionary(p => p.Key, p => p.Value.to(ScalarType.BFloat16));
        ModelWeights.Save(bare.Path, weights);
        var config = JsonNode.Parse(File.ReadAllText(Fixtures.Path("models", "llama-clm", "config.json")))!.AsObject();
        config.Remove("dtype");
        File.WriteAllText(bare.File("config.json"), config.ToJsonString());
        Assert.All(PeftModels.Default.LoadPretrained(bare.Path, TaskType.CausalLM, auto).parameters(), p => Assert.Equal(ScalarType.BFloat16, p.dtype));
    }

    [Fact]
    public void AutoRefusesADtypeItCannotLoad()
    {
        using var scratch = new ScratchDirectory();
        DecoderFixtures.LoadWith("llama-clm", scratch, c => c["dtype"] = "int8");
        var error = Assert.Throws<ModelConfigException>(() =>
            PeftModels.Default.LoadPretrained(scratch.Path, TaskType.CausalLM, new ModelLoadOptions { DType = ModelDType.Auto }));
        Assert.Contains("int8", error.Message);
        Assert.Equal(ModelDType.BFloat16, ModelLoadOptions.ParseDType("bf16"));
        Assert.Throws<ArgumentException>(() => ModelLoadOptions.ParseDType("float8"));
    }

    [Theory]
    [InlineData("tpu", "is not one of cpu, cuda, cuda:N")]
    [InlineData("cuda:x", "is not one of cpu, cuda, cuda:N")]
    [InlineData("cuda:99", "cuda:99")]
    public void AnUnknownOrMissingDeviceIsRefusedByName(string device, string message)
    {
        var error = Assert.Throws<ArgumentException>(() =>
            PeftModels.Default.LoadPretrained(Fixtures.Path("models", "llama-clm"), TaskType.CausalLM, new ModelLoadOptions { Device = device }));
        Assert.Contains("ModelLoadOptions.Device", error.Message);
        Assert.Contains(message, error.Message);
    }

    [Fact]
    public void AStoredDtypeLoadsAsAPrivateViewOfTheFile()
    {
        using var scope = NewDisposeScope();
        using var scratch = new ScratchDirectory();
        var weights = ShardedBf16Llama(scratch);
        var before = Directory.GetFiles(scratch.Path, "*.safetensors").Order().Select(File.ReadAllBytes).ToList();

        var model = PeftModels.Default.LoadPretrained(scratch.Path, TaskType.CausalLM, new ModelLoadOptions { DType = ModelDType.BFloat16 });
        using (no_grad())
        {
            foreach (var p in model.parameters()) p.add_(1);   // writes stay in the process (copy-on-write pages)
        }
        var after = Directory.GetFiles(scratch.Path, "*.safetensors").Order().Select(File.ReadAllBytes).ToList();
        Assert.Equal(before.Count, after.Count);
        for (var i = 0; i < before.Count; i++) Assert.Equal(before[i], after[i]);
        var embed = model.state_dict()["model.embed_tokens.weight"];
        Assert.True(embed.equal(weights["model.embed_tokens.weight"] + 1).all().item<bool>());
    }

    [Fact]
    public void PopulatedAndLazilyMappedLoadsGiveTheCheckpointsValues()
    {
        using var scope = NewDisposeScope();
        using var scratch = new ScratchDirectory();
        var weights = ShardedBf16Llama(scratch);

        foreach (var populate in new[] { true, false })
        {
            var state = PeftModels.Default.LoadPretrained(scratch.Path, TaskType.CausalLM,
                new ModelLoadOptions { DType = ModelDType.BFloat16, PopulatePages = populate }).state_dict();
            foreach (var (name, expected) in weights)
            {
                Assert.True(state[name].equal(expected).all().item<bool>(), $"populate {populate}: {name} differs from the checkpoint");
            }
        }
    }

    [Fact]
    public void AnEmbeddingBuiltOnMetaHoldsNoStorageAndKeepsItsPaddingRow()
    {
        using var scope = NewDisposeScope();
        var previous = get_default_device();
        set_default_device(new Device("meta"));
        TorchSharp.Modules.Embedding embedding;
        try
        {
            embedding = Peft.Layers.Embeddings.Create(32_000, 64, paddingIndex: 5);
        }
        finally
        {
            set_default_device(previous);
        }
        Assert.Equal(DeviceType.META, embedding.weight!.device_type);
        Assert.Equal([32_000L, 64L], embedding.weight.shape);
        Assert.Equal(5L, Peft.Layers.Embeddings.PaddingIndexOf(embedding));

        // Given real rows (as loading assigns them), it looks them up, and the padding row gets no gradient.
        embedding.weight = new TorchSharp.Modules.Parameter(arange(0, 8 * 3, dtype: ScalarType.Float32).reshape(8, 3));
        var output = embedding.forward(tensor(new long[] { 5, 7 }));
        Assert.True(output[1].equal(arange(21, 24, dtype: ScalarType.Float32)).all().item<bool>());
        output.sum().backward();
        var gradient = embedding.weight.grad!;
        Assert.Equal(0f, gradient[5].abs().sum().item<float>());
        Assert.Equal(3f, gradient[7].sum().item<float>());
    }

    [Fact]
    public void MappedPagesComeInInBulkWhereTheKernelOffersItAndByReadsOtherwise()
    {
        using var scope = NewDisposeScope();
        using var scratch = new ScratchDirectory();
        var values = arange(0, 50_000, dtype: ScalarType.Float32).reshape(250, 200);
        // Four bytes first, so that "b" starts inside a page, not on its boundary.
        var header = """{"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[250,200],"data_offsets":[4,200004]}}""";
        header += new string(' ', (8 - (8 + header.Length) % 8) % 8);
        var data = new byte[200_004];
        values.bytes.ToArray().CopyTo(data, 4);
        scratch.WriteRaw("model.safetensors", header, data);
        const long chunk = 3 * 4096 + 100;   // each call starts inside a page too

        using (var checkpoint = MappedCheckpoint.Open(scratch.Path))
        {
            checkpoint.PopulatePages = false;
            var b = checkpoint.Read("b", ScalarType.Float32, CPU);
            Assert.Equal(OperatingSystem.IsLinux() && Environment.OSVersion.Version >= new Version(5, 14), MappedPages.Populate(b, chunk));
            Assert.True(b.equal(values).all().item<bool>());
        }
        using (var checkpoint = MappedCheckpoint.Open(scratch.Path))
        {
            checkpoint.PopulatePages = false;
            var b = checkpoint.Read("b", ScalarType.Float32, CPU);
            Assert.False(MappedPages.Populate(b, chunk, advise: false));
            Assert.True(b.equal(values).all().item<bool>());
        }
    }

    [Fact]
    public void AHeadTheCheckpointLacksIsInitialisedAndTheRestIsLoaded()
    {
        using var scope = NewDisposeScope();
        var directory = Fixtures.Path("models", "llama-clm");
        var model = PeftModels.Default.LoadPretrained(directory, TaskType.SequenceClassification, new ModelLoadOptions { DType = ModelDType.BFloat16 },
            c => c with { NumLabelsValue = 3 });
        var score = model.state_dict()["score.weight"];
        Assert.Equal([3L, 32L], score.shape);
        Assert.Equal(ScalarType.BFloat16, score.dtype);
        Assert.True(score.abs().max().to(ScalarType.Float32).item<float>() is > 0 and < 1, "kaiming-uniform values, bound 1/sqrt(32)");
        Assert.True(model.state_dict()["model.norm.weight"].equal(ModelWeights.Load(directory)["model.norm.weight"].to(ScalarType.BFloat16)).all().item<bool>());
    }

    [Fact]
    public void ATensorAtAnUnalignedOffsetIsReadWithoutTheMap()
    {
        using var scope = NewDisposeScope();
        using var scratch = new ScratchDirectory();
        // One byte of U8, then two F32 at data offset 1 (the Python writer never does this, other writers may).
        var header = """{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"b":{"dtype":"F32","shape":[2],"data_offsets":[1,9]}}""";
        header += new string(' ', (8 - (8 + header.Length) % 8) % 8);   // the data area 8-aligned, so "b" sits at 1 mod 4
        var data = new byte[9];
        data[0] = 7;
        BitConverter.GetBytes(1.5f).CopyTo(data, 1);
        BitConverter.GetBytes(-2f).CopyTo(data, 5);
        scratch.WriteRaw("model.safetensors", header, data);

        using var checkpoint = MappedCheckpoint.Open(scratch.Path);
        var b = checkpoint.Read("b", ScalarType.Float32, CPU);
        Assert.Equal([1.5f, -2f], b.data<float>().ToArray());
        Assert.Equal(7, checkpoint.Read("a", ScalarType.Byte, CPU).item<byte>());
        Assert.Equal([1.5, -2.0], checkpoint.Read("b", ScalarType.Float64, CPU).data<double>().ToArray());
    }

    /// <summary>The Llama fixture saved in bf16 as small shards (most tensors start inside a page, many end inside one); its weights.</summary>
    private static Dictionary<string, Tensor> ShardedBf16Llama(ScratchDirectory scratch)
    {
        var weights = ModelWeights.Load(Fixtures.Path("models", "llama-clm")).ToDictionary(p => p.Key, p => p.Value.to(ScalarType.BFloat16));
        ModelWeights.Save(scratch.Path, weights, maxShardBytes: 20_000);
        File.Copy(Fixtures.Path("models", "llama-clm", "config.json"), scratch.File("config.json"));
        return weights;
    }
}
