using System.Text.Json;
using Microsoft.ML.OnnxRuntime;
using Peft.Checkpoints;
using Peft.Modeling;
using TorchSharp;
using Xunit.Abstractions;

namespace Peft.Pretrained.Tests;

/// <summary>Converts the packaged ResNet-18 once per test run into a temporary cache directory.</summary>
public sealed class ResNet18Fixture : IDisposable
{
    /// <summary>The temporary cache directory.</summary>
    public string CacheDirectory { get; } = Path.Combine(Path.GetTempPath(), "peft-resnet18-tests-" + Guid.NewGuid().ToString("N"));

    private readonly Lazy<string> _modelDirectory;

    public ResNet18Fixture() => _modelDirectory = new Lazy<string>(() => ResNet18Model.EnsureConverted(CacheDirectory));

    /// <summary>The converted model directory (converted on first use).</summary>
    public string ModelDirectory => _modelDirectory.Value;

    public void Dispose()
    {
        if (Directory.Exists(CacheDirectory)) Directory.Delete(CacheDirectory, recursive: true);
    }
}

[CollectionDefinition(Name)]
public sealed class ResNet18Collection : ICollectionFixture<ResNet18Fixture>
{
    public const string Name = "ResNet18";
}

[Collection(ResNet18Collection.Name)]
public sealed class ResNet18ModelTests(ResNet18Fixture fixture, ITestOutputHelper output)
{
    [Fact]
    public void Conversion_writes_a_resnet18_config_derived_from_the_graph()
    {
        using var config = JsonDocument.Parse(File.ReadAllText(Path.Combine(fixture.ModelDirectory, "config.json")));
        var root = config.RootElement;

        Assert.Equal("resnet", root.GetProperty("model_type").GetString());
        Assert.Equal("basic", root.GetProperty("layer_type").GetString());
        Assert.Equal(64, root.GetProperty("embedding_size").GetInt32());
        Assert.Equal([64, 128, 256, 512], root.GetProperty("hidden_sizes").EnumerateArray().Select(e => e.GetInt32()));
        // The package's CNTK "ResNet-18" has a third layer in its last stage (checked against ONNX Runtime below).
        Assert.Equal([2, 2, 2, 3], root.GetProperty("depths").EnumerateArray().Select(e => e.GetInt32()));
        Assert.False(root.GetProperty("downsample_in_first_stage").GetBoolean());
    }

    [Fact]
    public void Every_convolution_and_batchnorm_gets_its_transformers_name_and_running_statistics()
    {
        var header = SafeTensors.ReadHeader(Path.Combine(fixture.ModelDirectory, "model.safetensors"));
        var names = header.Tensors.Keys.ToHashSet();

        // 22 convolutions (stem, 18 in 9 layers, 3 shortcuts), each with a BatchNorm of 5 tensors; no classifier.
        Assert.Equal(22 * 6, names.Count);
        Assert.Equal([64L, 3, 7, 7], header.Tensors["resnet.embedder.embedder.convolution.weight"].Shape);
        for (var stage = 0; stage < 4; stage++)
        {
            for (var layer = 0; layer < (stage == 3 ? 3 : 2); layer++)
            {
                for (var k = 0; k < 2; k++)
                {
                    var prefix = $"resnet.encoder.stages.{stage}.layers.{layer}.layer.{k}";
                    Assert.Equal(4, header.Tensors[$"{prefix}.convolution.weight"].Shape.Count);
                    foreach (var buffer in new[] { "weight", "bias", "running_mean", "running_var", "num_batches_tracked" })
                    {
                        Assert.Contains($"{prefix}.normalization.{buffer}", names);
                    }
                }
            }
            Assert.Equal(stage > 0, names.Contains($"resnet.encoder.stages.{stage}.layers.0.shortcut.convolution.weight"));
        }
        Assert.Equal([512L, 256, 1, 1], header.Tensors["resnet.encoder.stages.3.layers.0.shortcut.convolution.weight"].Shape);
        Assert.Equal([128L, 64, 3, 3], header.Tensors["resnet.encoder.stages.1.layers.0.layer.0.convolution.weight"].Shape);
        Assert.DoesNotContain(names, n => n.StartsWith("classifier", StringComparison.Ordinal));

        // Trained statistics, not a fresh BatchNorm's zeros and ones.
        var weights = SafeTensors.Load(Path.Combine(fixture.ModelDirectory, "model.safetensors"));
        try
        {
            Assert.True(weights["resnet.encoder.stages.2.layers.1.layer.0.normalization.running_var"].sub(1).abs().max().item<float>() > 0.1f);
            Assert.True(weights["resnet.encoder.stages.2.layers.1.layer.0.normalization.running_mean"].abs().max().item<float>() > 0.1f);
        }
        finally
        {
            foreach (var tensor in weights.Values) tensor.Dispose();
        }
    }

    [Fact]
    public void The_preprocessor_config_carries_the_packages_own_normalisation()
    {
        using var config = JsonDocument.Parse(File.ReadAllText(Path.Combine(fixture.ModelDirectory, "preprocessor_config.json")));
        var means = config.RootElement.GetProperty("image_mean").EnumerateArray().Select(e => e.GetDouble()).ToArray();

        Assert.False(config.RootElement.GetProperty("do_rescale").GetBoolean());
        Assert.Equal(3, means.Length);
        Assert.All(means, m => Assert.InRange(m, 90, 140)); // 0–255 units
        Assert.True(means[0] > means[2], "R's mean exceeds B's in ImageNet; the channel order is RGB");
    }

    [Fact]
    public void Pooled_features_match_onnx_runtime_on_the_packaged_graph()
    {
        // A random 224×224 image in the package model's input space: BGR, 0–255 minus the mean (its input is one image).
        torch.manual_seed(7);
        using var bgr = torch.rand(1, 3, 224, 224).mul(255).sub(120);
        float[] expected;
        using (var session = new InferenceSession(ResNet18Model.FindPackageFile(ResNet18Model.OnnxFileName)))
        using (var input = OrtValue.CreateTensorValueFromMemory(bgr.data<float>().ToArray(), [1, 3, 224, 224]))
        using (var options = new RunOptions())
        {
            var inputName = session.InputNames.Single();
            using var results = session.Run(options, [inputName], [input], [session.OutputNames.Single()]);
            expected = results[0].GetTensorDataAsSpan<float>().ToArray();
        }

        using var model = PeftModels.Default.LoadPretrained(fixture.ModelDirectory, TaskType.FeatureExtraction);
        using var noGrad = torch.no_grad();
        using var rgb = bgr.flip(1);
        using var features = model.forward(new ModelInputs { PixelValues = rgb }).Logits!;
        Assert.Equal([1L, 512], features.shape);
        var actual = features.data<float>().ToArray();
        Assert.Equal(expected.Length, actual.Length);

        var scale = expected.Max(Math.Abs);
        var worst = actual.Zip(expected, (a, e) => Math.Abs(a - e)).Max();
        output.WriteLine($"max |ours - ORT| = {worst:E3}, largest feature {scale:F3}");
        Assert.True(worst <= 1e-4 * Math.Max(1, scale), $"max abs difference {worst:E3} (features up to {scale:F3})");
    }

    [SkippableFact]
    public void Frozen_features_tell_two_fashion_mnist_classes_apart()
    {
        Skip.IfNot(Directory.Exists(FashionMnistDataset.DefaultDirectory), "Debian's dataset-fashion-mnist package is not installed.");
        var data = FashionMnistDataset.Load(trainPerClass: 20, testPerClass: 20, seed: 3);
        var means = JsonDocument.Parse(File.ReadAllText(Path.Combine(fixture.ModelDirectory, "preprocessor_config.json")))
            .RootElement.GetProperty("image_mean").EnumerateArray().Select(e => (float)e.GetDouble()).ToArray();
        // Pullover (2) against Coat (4): alike in shape, so a random network's features would not separate them.
        int[] classes = [2, 4];
        using var model = PeftModels.Default.LoadPretrained(fixture.ModelDirectory, TaskType.FeatureExtraction);
        model.eval();
        using var noGrad = torch.no_grad();
        torch.Tensor Features(IEnumerable<LabeledImage> images)
        {
            var list = images.ToList();
            var pixels = torch.tensor(list.SelectMany(i => i.Pixels).Select(b => (float)b).ToArray(), [list.Count, 1, 28, 28]);
            var resized = torch.nn.functional.interpolate(pixels, size: [56, 56], mode: torch.InterpolationMode.Bilinear, align_corners: false);
            var normalized = resized.expand(-1, 3, -1, -1) - torch.tensor(means).view(1, 3, 1, 1);
            return model.forward(new ModelInputs { PixelValues = normalized }).Logits!;
        }

        // Nearest class mean on the training images' features: a linear classifier with no training loop.
        var centroids = classes.Select(c => Features(data.Train.Where(i => i.Label == c)).mean([0])).ToArray();
        var correct = 0;
        var total = 0;
        foreach (var (label, index) in classes.Select((c, i) => (c, i)))
        {
            using var features = Features(data.Test.Where(i => i.Label == label));
            var distances = torch.stack(centroids.Select(c => (features - c).norm(1)).ToArray(), 1);
            correct += distances.argmin(1).eq(index).sum().item<long>() is var n ? (int)n : 0;
            total += (int)features.shape[0];
        }
        var accuracy = (double)correct / total;
        output.WriteLine($"nearest-class-mean accuracy, Pullover vs Coat, 20 + 20 test images: {accuracy:P1}");
        Assert.True(accuracy >= 0.7, $"accuracy {accuracy:P1}: the pretrained features should separate the classes well above chance (50 %)");
    }
}
