using System.Text.Json;
using System.Text.Json.Nodes;
using Peft.Cli.Data;
using Peft.Cli.Reporting;
using Peft.Training;
using Spectre.Console.Testing;

namespace Peft.Cli.Tests;

/// <summary>
/// <c>peft finetune</c> then <c>peft predict</c> on the tiny BERT of the reference fixtures, given a
/// WordPiece vocabulary of its 128 ids: labels saved with the adapter, checkpoints pruned, piped progress.
/// </summary>
[Collection("cli")]
public sealed class ClassifierFinetuneTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("peft-classify-").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    private string TinyBertWithVocabulary()
    {
        var model = Path.Combine(_directory, "model");
        Directory.CreateDirectory(model);
        foreach (var file in new[] { "config.json", "model.safetensors" }) File.Copy(TestFiles.Fixture("models", "bert-seqcls", file), Path.Combine(model, file));
        var tokens = new List<string> { "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]" };
        for (char c = 'a'; c <= 'z'; c++) tokens.Add(c.ToString());
        while (tokens.Count < 128) tokens.Add($"[unused{tokens.Count}]");
        File.WriteAllLines(Path.Combine(model, "vocab.txt"), tokens);
        return model;
    }

    [Fact]
    public async Task FinetuneSavesLabelNamesThatPredictUses()
    {
        var model = TinyBertWithVocabulary();
        var data = Path.Combine(_directory, "topics.jsonl");
        File.WriteAllLines(data, Enumerable.Range(0, 48).Select(i => JsonSerializer.Serialize(i % 2 == 0
            ? new { text = "a b c a b c", label = "letters-abc" }
            : new { text = "x y z x y z", label = "letters-xyz" })));
        var output = Path.Combine(_directory, "out");

        var run = await CliRun.Of("finetune", "--model", model, "--data", data, "--methods", "lora", "--epochs", "3", "--batch-size", "8",
            "--learning-rate", "0.01", "--output", output);

        Assert.Equal(0, run.ExitCode);
        Assert.Contains("(100 %)", run.Console);     // piped progress reaches the end
        var adapter = Path.Combine(output, "lora-adapter");
        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(adapter, "config.json")))!;
        Assert.Equal("letters-abc", (string?)config["id2label"]!["0"]);
        Assert.Equal(1, (int?)config["label2id"]!["letters-xyz"]);
        Assert.Equal(["letters-abc", "letters-xyz"], AdapterLabels.Read(adapter));
        // save_total_limit 2: of 3 epoch checkpoints, the last and the best stay.
        var kept = Directory.GetDirectories(Path.Combine(output, "checkpoints", "lora")).Select(Path.GetFileName).ToList();
        Assert.InRange(kept.Count, 1, 2);
        Assert.Contains("checkpoint-epoch-3", kept);

        // The base model is found through the adapter's base_model_name_or_path.
        var predict = await CliRun.Of("predict", "--adapter", adapter, "--text", "a b c a", "--text", "x y z z");
        Assert.Equal(0, predict.ExitCode);
        var lines = predict.Console.Trim().Split('\n').Select(l => l.Split('\t')).ToList();
        Assert.Equal(2, lines.Count);
        Assert.All(lines, l => Assert.Contains(l[0], new[] { "letters-abc", "letters-xyz" }));
        Assert.Equal("a b c a", lines[0][2].Trim());

        var evaluate = await CliRun.Of("evaluate", "--model", model, "--adapter", adapter, "--data", data);
        Assert.Equal(0, evaluate.ExitCode);
        Assert.Contains("48 examples", evaluate.Console);
    }

    [Fact]
    public async Task PredictWithACausalAdapterIsRefused()
    {
        var run = await CliRun.Of("predict", "--adapter", TestFiles.Fixture("cases", "gpt2-clm-lora", "adapter"), "--text", "hi");
        Assert.Contains("--adapter", run.AssertUserError());
    }

    [Fact]
    public void PruningKeepsTheLastAndTheBest()
    {
        var directory = Path.Combine(_directory, "ckpt");
        for (int epoch = 1; epoch <= 4; epoch++) Directory.CreateDirectory(Path.Combine(directory, $"checkpoint-epoch-{epoch}"));
        var evaluations = new[] { 0.9, 0.3, 0.5, 0.6 }.Select(loss => new EvaluationResult(loss, 0.5, 10)).ToList();

        Assert.Equal([2, 4], CheckpointPruning.Prune(directory, evaluations, limit: 2));
        Assert.Equal(["checkpoint-epoch-2", "checkpoint-epoch-4"], Directory.GetDirectories(directory).Select(Path.GetFileName).Order());
        Assert.Equal([2, 4], CheckpointPruning.Prune(directory, evaluations, limit: 0));
    }

    [Fact]
    public void CancelledRunIsMarkedInResults()
    {
        var cancelled = new TrainingResult([1.0, 0.9], [new EvaluationResult(0.8, 0.6, 10)], Cancelled: true, TimeSpan.FromSeconds(3));
        var markdown = ResultsReport.ToMarkdown([new MethodResult("lora", 0.6, 100, 1000, 4096, TimeSpan.FromSeconds(3), cancelled)], "tiny on data, 3 epochs");
        Assert.Contains("**Cancelled**", markdown);
        Assert.Contains("| LoRA (cancelled, 1 epochs) |", markdown);
    }

    [Fact]
    public void ResultsTableFitsEightyColumnsWithoutBreakingWords()
    {
        var training = new TrainingResult([1.0], [], Cancelled: false, TimeSpan.FromSeconds(1));
        var results = new[]
        {
            new MethodResult("lora", 0.836, 340_230, 23_055_756, 1_363_148, TimeSpan.FromSeconds(223), training, 0.836),
            new MethodResult("probe", 0.684, 2_310, 22_715_526, 9_216, TimeSpan.FromSeconds(84), training),
            new MethodResult("full", 0.833, 22_715_526, 22_715_526, 90_914_406, TimeSpan.FromSeconds(211), training),
        };
        var console = new TestConsole();
        console.Profile.Width = 80;
        console.Write(ResultsReport.ToTable(results));
        var lines = console.Output.Split('\n');
        Assert.All(lines, l => Assert.True(l.TrimEnd().Length <= 80, l));
        foreach (var cell in new[] { "full fine-tuning", "linear probe", "22,715,526", "83.6 %", "86.7 MiB", "223 s", "100.00%", "accuracy", "trainable" })
        {
            Assert.Contains(lines, l => l.Contains(cell));
        }
    }
}
