using Peft.Pretrained;

namespace Peft.Cli.Tests;

/// <summary>
/// <c>peft finetune --task image-classification</c> at its tiniest: the packaged ResNet-18 converted into a
/// temporary cache, two Fashion-MNIST images per class, one epoch (no step may be non-finite: the trainer would stop);
/// and the options it refuses.
/// </summary>
[Collection("cli")]
public sealed class ImageFinetuneTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("peft-image-").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    [SkippableFact]
    public async Task TheImageJobTrainsAndReportsTheThreeMethods()
    {
        Skip.IfNot(Directory.Exists(FashionMnistDataset.DefaultDirectory), "Debian's dataset-fashion-mnist package is not installed.");
        var previous = Environment.GetEnvironmentVariable("PEFT_CACHE");
        Environment.SetEnvironmentVariable("PEFT_CACHE", Path.Combine(_directory, "cache"));
        try
        {
            var output = Path.Combine(_directory, "out");
            var run = await CliRun.Of("finetune", "--task", "image-classification", "--max-examples-per-label", "2", "--epochs", "1",
                "--batch-size", "10", "--output", output);

            Assert.True(run.ExitCode == 0, run.Console + run.Error);
            Assert.Contains("20 training and 10 test images at 32×32 px", run.Console);
            foreach (var method in new[] { "LoRA", "linear probe", "full fine-tuning" }) Assert.Contains(method, run.Console);
            var results = File.ReadAllText(Path.Combine(output, "results.md"));
            Assert.Equal(3, results.Split('\n').Count(l => l.StartsWith("| LoRA |", StringComparison.Ordinal) || l.StartsWith("| linear probe |", StringComparison.Ordinal) || l.StartsWith("| full fine-tuning |", StringComparison.Ordinal)));
            Assert.True(File.Exists(Path.Combine(output, "training.png")));
            var adapter = Path.Combine(output, "lora-adapter");
            var config = File.ReadAllText(Path.Combine(adapter, "adapter_config.json"));
            Assert.Contains("\"convolution\"", config);
            Assert.Contains("\"normalization\"", config);
            Assert.Equal(FashionMnistDataset.Labels, Data.AdapterLabels.Read(adapter));
        }
        finally
        {
            Environment.SetEnvironmentVariable("PEFT_CACHE", previous);
        }
    }

    [Theory]
    [InlineData(new[] { "finetune", "--task", "image-classificaton" }, "--task")]
    [InlineData(new[] { "finetune", "--image-size", "64" }, "--image-size applies to --task image-classification only")]
    [InlineData(new[] { "finetune", "--task", "image-classification", "--image-size", "16" }, "--image-size must be at least 32")]
    [InlineData(new[] { "finetune", "--task", "image-classification", "--categories", "food,science" }, "--categories")]
    [InlineData(new[] { "finetune", "--task", "image-classification", "--quantize", "nf4" }, "--quantize")]
    public async Task ImageOptionsThatCannotWorkAreRefusedNamingTheOption(string[] args, string expected)
    {
        var run = await CliRun.Of([.. args, "--output", Path.Combine(_directory, "out")]);

        Assert.Contains(expected, run.AssertUserError());
    }
}
