using System.Text.Json;
using Peft.Cli.Data;
using Peft.Cli.Hosting;

namespace Peft.Cli.Tests;

/// <summary>
/// <c>peft finetune --task causal-lm</c> end to end on the tiny GPT-2 of the reference fixtures, given a
/// byte-level BPE vocabulary of single characters (vocab.json + merges.txt without merges).
/// </summary>
public sealed class CausalFinetuneTests : IDisposable
{
    private readonly string _directory = Path.Combine(Path.GetTempPath(), "peft-causal-" + Guid.NewGuid().ToString("N"));

    public CausalFinetuneTests() => Directory.CreateDirectory(_directory);

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    private static string Fixture(params string[] parts)
    {
        for (var directory = new DirectoryInfo(AppContext.BaseDirectory); directory is not null; directory = directory.Parent)
        {
            var candidate = Path.Combine([directory.FullName, "tests", "fixtures", "hf-peft", .. parts]);
            if (Path.Exists(candidate)) return candidate;
        }
        throw new DirectoryNotFoundException("tests/fixtures/hf-peft not found");
    }

    private string TinyModelWithTokenizer(string fixture = "gpt2-clm")
    {
        var model = Path.Combine(_directory, "model-" + fixture);
        Directory.CreateDirectory(model);
        foreach (var file in new[] { "config.json", "model.safetensors" }) File.Copy(Fixture("models", fixture, file), Path.Combine(model, file));
        // GPT-2's byte-level alphabet maps printable ASCII to itself and the space to 'Ġ'.
        var vocabulary = new Dictionary<string, int>();
        for (char c = '!'; c <= '~'; c++) vocabulary[c.ToString()] = vocabulary.Count;
        vocabulary["Ġ"] = vocabulary.Count;
        vocabulary["<|endoftext|>"] = vocabulary.Count;
        // The rest of the model's 128 ids: bytes 0-31 of the byte-level alphabet (U+0100...), so that any generated id decodes.
        for (char c = 'Ā'; vocabulary.Count < 128; c++) vocabulary[c.ToString()] = vocabulary.Count;
        File.WriteAllText(Path.Combine(model, "vocab.json"), JsonSerializer.Serialize(vocabulary));
        File.WriteAllText(Path.Combine(model, "merges.txt"), "#version: 0.2\n");
        return model;
    }

    [Fact]
    public void PromptCompletionPairsAreRead()
    {
        var path = Path.Combine(_directory, "pairs.csv");
        File.WriteAllText(path, "prompt,completion\nhi,there\n,\n");
        var warnings = new List<string>();
        var pairs = DataFileReader.ReadPromptCompletion(path, BadLinePolicy.Skip, warnings.Add);
        Assert.Single(pairs);
        Assert.Contains(":3:", Assert.Single(warnings));
    }

    [Fact]
    public async Task FinetunesSavesAndReloadsAnAdapter()
    {
        var model = TinyModelWithTokenizer();
        var data = Path.Combine(_directory, "pairs.jsonl");
        var letters = "abcdefgh";
        File.WriteAllLines(data, Enumerable.Range(0, 40).Select(i =>
            JsonSerializer.Serialize(new { prompt = $"echo {letters[i % 8]}:", completion = $"{letters[i % 8]}{letters[i % 8]}" })));
        var output = Path.Combine(_directory, "out");
        // No --methods: for causal-lm the default is lora,full; lora alone keeps the test short.
        var run = await CliRun.Of("finetune", "--task", "causal-lm", "--model", model, "--data", data, "--methods", "lora",
            "--epochs", "3", "--batch-size", "8", "--learning-rate", "0.01", "--target-modules", "all-linear", "--output", output);

        Assert.Equal(0, run.ExitCode);
        Assert.True(File.Exists(Path.Combine(output, "lora-adapter", "adapter_model.safetensors")));
        var table = File.ReadAllText(Path.Combine(output, "results.md"));
        Assert.Contains("| LoRA |", table);
        var row = table.Split('\n').Single(l => l.StartsWith("| LoRA |", StringComparison.Ordinal)).Split('|', StringSplitOptions.TrimEntries);
        Assert.Equal(row[2], row[7]); // the reloaded adapter reproduces the accuracy
    }

    [Fact]
    public async Task AHugeLearningRateIsAOneLineErrorNamingTheStepAndLeavesNoAdapter()
    {
        var model = TinyModelWithTokenizer();
        var data = Path.Combine(_directory, "pairs.jsonl");
        File.WriteAllLines(data, Enumerable.Range(0, 24).Select(i =>
            JsonSerializer.Serialize(new { prompt = $"echo {"abcd"[i % 4]}:", completion = $"{"abcd"[i % 4]}" })));
        var output = Path.Combine(_directory, "nan");
        string[] arguments = ["finetune", "--task", "causal-lm", "--model", model, "--data", data, "--methods", "lora",
            "--epochs", "3", "--batch-size", "4", "--learning-rate", "1e6", "--warmup-ratio", "0", "--output", output];

        var stopped = await CliRun.Of(arguments);
        Assert.Matches(@"^peft finetune: step \d+ \(epoch \d\): .* is not finite", stopped.AssertUserError());
        Assert.Contains("--skip-nonfinite-steps", stopped.Error);
        Assert.False(Directory.Exists(Path.Combine(output, "lora-adapter")));

        // Skipping: the run ends, and its adapter holds no NaN (the reload check inside the command compares accuracies).
        var skipped = await CliRun.Of([.. arguments, "--skip-nonfinite-steps", "true"]);
        Assert.Equal(0, skipped.ExitCode);
        var adapter = Peft.Checkpoints.SafeTensors.Load(Path.Combine(output, "lora-adapter", "adapter_model.safetensors"));
        Assert.All(adapter, tensor => Assert.True(tensor.Value.isfinite().all().item<bool>(), tensor.Key));
    }

    [Fact]
    public async Task GradientCheckpointingTrainsTheSameAdapter()
    {
        var model = TinyModelWithTokenizer();
        var data = Path.Combine(_directory, "pairs.jsonl");
        File.WriteAllLines(data, Enumerable.Range(0, 24).Select(i =>
            JsonSerializer.Serialize(new { prompt = $"echo {"abcd"[i % 4]}:", completion = $"{"abcd"[i % 4]}" })));
        async Task<string> LoraRow(string output, params string[] extra)
        {
            var run = await CliRun.Of(["finetune", "--task", "causal-lm", "--model", model, "--data", data, "--methods", "lora",
                "--epochs", "2", "--batch-size", "8", "--learning-rate", "0.01", "--output", Path.Combine(_directory, output), .. extra]);
            Assert.Equal(0, run.ExitCode);
            var table = File.ReadAllText(Path.Combine(_directory, output, "results.md"));
            return table.Split('\n').Single(l => l.StartsWith("| LoRA |", StringComparison.Ordinal)).Split('|', StringSplitOptions.TrimEntries)[2];
        }

        // Recomputing the activations changes memory and time, not the math: the same accuracy.
        Assert.Equal(await LoraRow("plain"), await LoraRow("checkpointed", "--gradient-checkpointing", "true"));

        // The option reaches other architectures too: DeBERTa (relative-position embeddings as a layer input) trains.
        var deberta = Path.Combine(_directory, "model-deberta");
        Directory.CreateDirectory(deberta);
        foreach (var file in new[] { "config.json", "model.safetensors" }) File.Copy(Fixture("models", "deberta-seqcls", file), Path.Combine(deberta, file));
        File.WriteAllLines(Path.Combine(deberta, "vocab.txt"), new[] { "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]" }.Concat(Enumerable.Range(0, 123).Select(i => $"w{i}")));
        var labelled = Path.Combine(_directory, "labelled.jsonl");
        File.WriteAllLines(labelled, Enumerable.Range(0, 8).Select(i => JsonSerializer.Serialize(new { text = $"w{i} w{i + 1}", label = i % 2 })));
        var debertaRun = await CliRun.Of("finetune", "--model", deberta, "--data", labelled, "--methods", "lora", "--epochs", "1",
            "--output", Path.Combine(_directory, "deberta"), "--gradient-checkpointing", "true");
        Assert.True(debertaRun.ExitCode == 0, debertaRun.Console + debertaRun.Error);
    }

    [Fact]
    public async Task DeviceAndDtypeReachTheLoader()
    {
        var model = TinyModelWithTokenizer();
        var cuda = await CliRun.Of("generate", "--model", model, "--prompt", "1 2 3", "--device", "cuda");
        Assert.Contains("--device", cuda.AssertUserError());
        var half = await CliRun.Of("generate", "--model", model, "--prompt", "1 2 3", "--max-new-tokens", "3", "--dtype", "bfloat16");
        Assert.Equal(0, half.ExitCode);
        Assert.StartsWith("1 2 3 ", half.Console.TrimEnd().Split('\n')[^1]);
    }

    [Fact]
    public void CausalTaskNeedsPromptCompletionDataAndAModel()
    {
        var problems = new FinetuneOptions { Task = "causal-lm", Methods = "lora,probe" }.Problems().ToList();
        Assert.Contains(problems, p => p.Contains("--data"));
        Assert.Contains(problems, p => p.Contains("--model"));
        Assert.Contains(problems, p => p.Contains("probe"));
    }

    [Fact]
    public async Task GenerateTakesTextAndPrintsText()
    {
        var model = TinyModelWithTokenizer();
        var run = await CliRun.Of("generate", "--model", model, "--text", "echo a:", "--max-new-tokens", "4");
        Assert.Equal(0, run.ExitCode);
        Assert.StartsWith("echo a:", run.Console);
    }

    [Fact]
    public async Task GenerateTextWithoutAVocabularyNamesTheFile()
    {
        var run = await CliRun.Of("generate", "--model", Fixture("models", "gpt2-clm"), "--text", "hi");
        Assert.Contains("vocab.json", run.AssertUserError());
    }
}
