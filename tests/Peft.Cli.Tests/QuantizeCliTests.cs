using Peft.Checkpoints;

namespace Peft.Cli.Tests;

/// <summary><c>--quantize</c>, <c>--double-quant</c> and <c>--compute-dtype</c> on the commands that load a base model.</summary>
public class QuantizeCliTests
{
    private static readonly string Llama = TestFiles.Fixture("models", "llama-clm");
    private static readonly string Adapter = TestFiles.Fixture("cases", "llama-clm-lora", "adapter");

    [Fact]
    public async Task InspectReportsTheQuantizedSizeAndTheSameParameterLine()
    {
        var plain = await CliRun.Of("inspect", "--adapter", Adapter, "--model", Llama);
        var quantized = await CliRun.Of("inspect", "--adapter", Adapter, "--model", Llama, "--quantize", "nf4", "--double-quant", "true", "--compute-dtype", "bfloat16");
        Assert.Equal(0, quantized.ExitCode);
        static string Line(string console) => console.Split('\n').Single(l => l.StartsWith("trainable params", StringComparison.Ordinal));
        Assert.Equal(Line(plain.Console), Line(quantized.Console));
        Assert.Contains("quantized (nf4):", quantized.Console);
        Assert.Contains("peak memory", quantized.Console);
    }

    [Fact]
    public async Task MergeOntoAQuantizedBaseWritesADenseModelWithTheBasesKeys()
    {
        var scratch = Directory.CreateTempSubdirectory("peft-qmerge-");
        try
        {
            var merged = Path.Combine(scratch.FullName, "merged");
            var run = await CliRun.Of("merge", "--model", Llama, "--adapter", Adapter, "--output", merged, "--quantize", "int8");
            Assert.Equal(0, run.ExitCode);
            var written = ModelWeights.Load(merged);
            var original = ModelWeights.Load(Llama);
            Assert.Equal(original.Keys.Order(), written.Keys.Order());
            Assert.All(written, kv => Assert.Equal(original[kv.Key].shape, kv.Value.shape));
            Assert.All(written, kv => Assert.True(kv.Value.is_floating_point(), kv.Key));
        }
        finally
        {
            scratch.Delete(recursive: true);
        }
    }

    [Theory]
    [InlineData("--quantize int4", "--quantize")]
    [InlineData("--double-quant true", "--double-quant needs --quantize")]
    [InlineData("--compute-dtype bfloat16", "--compute-dtype needs --quantize")]
    [InlineData("--quantize int8 --double-quant true", "not int8")]
    [InlineData("--quantize int8 --compute-dtype float16", "int8 layers compute in the model's dtype")]
    public async Task BadQuantizationOptionsAreOneLineErrors(string options, string expected)
    {
        var run = await CliRun.Of(["merge", "--model", Llama, "--adapter", Adapter, "--output", Path.Combine(Path.GetTempPath(), "peft-never-written"), .. options.Split(' ')]);
        Assert.Contains(expected, run.AssertUserError());
    }

    [Fact]
    public async Task FullFineTuningOfAQuantizedBaseIsRefused()
    {
        var run = await CliRun.Of("finetune", "--task", "causal-lm", "--model", Llama, "--data", "/no/such.jsonl", "--quantize", "nf4", "--methods", "lora,full");
        Assert.Contains("--methods full cannot train a base stored in nf4", run.AssertUserError());
    }
}
