using System.Text.Json.Nodes;
using Peft.Checkpoints;
using TorchSharp;

namespace Peft.Tests.Checkpoints;

public class ModelWeightsTests
{
    private static string Gpt2Directory => Fixtures.Path("models", "gpt2-clm");

    private static void AssertIdentical(IReadOnlyDictionary<string, torch.Tensor> expected, IReadOnlyDictionary<string, torch.Tensor> actual)
    {
        Assert.Equal(expected.Keys.Order(StringComparer.Ordinal), actual.Keys.Order(StringComparer.Ordinal));
        foreach (var (name, tensor) in expected)
        {
            Assert.Equal(tensor.dtype, actual[name].dtype);
            Assert.Equal(tensor.shape, actual[name].shape);
            Assert.True(tensor.equal(actual[name]).all().item<bool>(), $"{name} differs");
        }
    }

    [Fact]
    public void LoadsASingleFileModelDirectory()
    {
        var weights = ModelWeights.Load(Gpt2Directory);

        Assert.Equal(28, weights.Count);
        Assert.Equal(new long[] { 128, 32 }, weights["transformer.wte.weight"].shape);
    }

    [Fact]
    public void ShardsWhenOverTheLimitAndLoadsBackIdentically()
    {
        using var scratch = new ScratchDirectory();
        var original = ModelWeights.Load(Gpt2Directory);
        const long maxShard = 40_000;
        var totalBytes = original.Values.Sum(t => t.NumberOfElements * t.ElementSize);

        ModelWeights.Save(scratch.Path, original, maxShard);

        Assert.False(File.Exists(scratch.File(ModelWeights.SingleFileName)));
        var index = JsonNode.Parse(File.ReadAllText(scratch.File(ModelWeights.IndexFileName)))!.AsObject();
        Assert.Equal(totalBytes, index["metadata"]!["total_size"]!.GetValue<long>());
        var weightMap = index["weight_map"]!.AsObject().ToDictionary(p => p.Key, p => p.Value!.GetValue<string>());
        Assert.Equal(original.Keys.Order(StringComparer.Ordinal), weightMap.Keys);
        var shardFiles = weightMap.Values.Distinct().Order().ToList();
        Assert.True(shardFiles.Count >= 3, $"expected several shards, got {shardFiles.Count}");
        Assert.Equal(Enumerable.Range(1, shardFiles.Count).Select(i => $"model-{i:D5}-of-{shardFiles.Count:D5}.safetensors"), shardFiles);
        foreach (var file in shardFiles)
        {
            var header = SafeTensors.ReadHeader(scratch.File(file));
            Assert.Equal("pt", header.Metadata["format"]);
            Assert.True(header.Tensors.Values.Sum(t => t.End - t.Begin) <= maxShard, $"{file} is over the limit");
            Assert.Equal(weightMap.Where(p => p.Value == file).Select(p => p.Key).Order(StringComparer.Ordinal), header.Tensors.Keys.Order(StringComparer.Ordinal));
        }

        AssertIdentical(original, ModelWeights.Load(scratch.Path));
    }

    [Fact]
    public void ATensorLargerThanTheLimitGetsItsOwnShard()
    {
        using var scratch = new ScratchDirectory();
        var weights = new Dictionary<string, torch.Tensor>
        {
            ["a"] = torch.ones(4),
            ["big"] = torch.arange(100, dtype: torch.ScalarType.Float32),
            ["c"] = torch.ones(4),
        };

        ModelWeights.Save(scratch.Path, weights, maxShardBytes: 32);

        var index = JsonNode.Parse(File.ReadAllText(scratch.File(ModelWeights.IndexFileName)))!["weight_map"]!.AsObject();
        Assert.Equal("model-00001-of-00003.safetensors", index["a"]!.GetValue<string>());
        Assert.Equal("model-00002-of-00003.safetensors", index["big"]!.GetValue<string>());
        Assert.Equal("model-00003-of-00003.safetensors", index["c"]!.GetValue<string>());
        AssertIdentical(weights, ModelWeights.Load(scratch.Path));
    }

    [Fact]
    public void ResavingUnshardedRemovesTheStaleIndexAndShards()
    {
        using var scratch = new ScratchDirectory();
        var original = ModelWeights.Load(Gpt2Directory);
        ModelWeights.Save(scratch.Path, original, 40_000);
        var changed = original.ToDictionary(p => p.Key, p => p.Key == "transformer.wte.weight" ? p.Value.add(1) : p.Value);

        ModelWeights.Save(scratch.Path, changed);

        Assert.Equal([ModelWeights.SingleFileName], Directory.GetFiles(scratch.Path).Select(Path.GetFileName));
        AssertIdentical(changed, ModelWeights.Load(scratch.Path));
    }

    [Fact]
    public void IndexNamingAMissingShardIsReported()
    {
        using var scratch = new ScratchDirectory();
        ModelWeights.Save(scratch.Path, ModelWeights.Load(Gpt2Directory), 40_000);
        File.Delete(scratch.File("model-00002-of-00004.safetensors"));
        var indexPath = scratch.File(ModelWeights.IndexFileName);

        var error = Assert.Throws<CheckpointException>(() => ModelWeights.Load(scratch.Path));

        Assert.Equal(indexPath, error.FilePath);
        Assert.Contains(indexPath, error.Message);
        Assert.Contains("model-00002-of-00004.safetensors", error.Message);
        Assert.Contains("missing", error.Message);
        Assert.NotNull(error.TensorName);
    }

    [Fact]
    public void IndexMapsAKeyItsShardLacks()
    {
        using var scratch = new ScratchDirectory();
        ModelWeights.Save(scratch.Path, new Dictionary<string, torch.Tensor> { ["a"] = torch.ones(4), ["b"] = torch.ones(4) }, 16);
        var indexPath = scratch.File(ModelWeights.IndexFileName);
        var index = JsonNode.Parse(File.ReadAllText(indexPath))!;
        index["weight_map"]!["b"] = "model-00001-of-00002.safetensors";
        File.WriteAllText(indexPath, index.ToJsonString());

        var error = Assert.Throws<CheckpointException>(() => ModelWeights.Load(scratch.Path));

        Assert.Equal(scratch.File("model-00001-of-00002.safetensors"), error.FilePath);
        Assert.Equal("b", error.TensorName);
    }

    [Theory]
    [InlineData("not json")]
    [InlineData("[]")]
    [InlineData("{\"metadata\":{}}")]
    [InlineData("{\"weight_map\":{\"a\":3}}")]
    [InlineData("{\"weight_map\":{\"a\":\"../model.safetensors\"}}")]
    public void MalformedIndexIsReported(string json)
    {
        using var scratch = new ScratchDirectory();
        var indexPath = scratch.File(ModelWeights.IndexFileName);
        File.WriteAllText(indexPath, json);

        var error = Assert.Throws<CheckpointException>(() => ModelWeights.Load(scratch.Path));

        Assert.Contains(indexPath, error.Message);
    }

    [Fact]
    public void DirectoryWithoutWeightsIsReported()
    {
        using var scratch = new ScratchDirectory();

        var error = Assert.Throws<CheckpointException>(() => ModelWeights.Load(scratch.Path));
        var missingDirectory = Assert.Throws<CheckpointException>(() => ModelWeights.Load(scratch.File("nope")));

        Assert.Contains(scratch.File(ModelWeights.SingleFileName), error.Message);
        Assert.Contains(scratch.File("nope"), missingDirectory.Message);
    }
}
