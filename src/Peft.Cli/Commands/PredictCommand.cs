using System.Globalization;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Peft.Cli.Data;
using Peft.Cli.Hosting;
using Peft.Modeling;
using Peft.Pretrained;
using Spectre.Console;
using TorchSharp;

namespace Peft.Cli.Commands;

/// <summary>
/// <c>peft predict</c>: classifies new text with a trained sequence-classification adapter; one line
/// per text, "label &lt;tab&gt; probability &lt;tab&gt; text", with the label names saved beside the adapter.
/// </summary>
public sealed partial class PredictCommand(IOptions<PredictOptions> options, PeftModels models, IAnsiConsole console, ILogger<PredictCommand> logger) : ICliCommand
{
    /// <inheritdoc />
    public Task<int> RunAsync(CancellationToken cancellationToken)
    {
        var settings = options.Value;
        var adapter = CommandChecks.ExistingDirectory(settings.Adapter, "--adapter");
        var config = models.ReadAdapterConfig(adapter);
        if (config.TaskType is { } task && task != TaskType.SequenceClassification)
        {
            throw new CommandLineException($"--adapter: {adapter} was trained for {task.Name}; predict classifies with a SEQ_CLS adapter (use generate for language models).");
        }
        var texts = Texts(settings);
        if (settings.MaxLength < 8) throw new CommandLineException($"--max-length must be at least 8, got {settings.MaxLength}.");
        var modelDirectory = settings.Model is { Length: > 0 } given
            ? CommandChecks.ExistingDirectory(given, "--model")
            : config.BaseModelNameOrPath is { Length: > 0 } saved && Directory.Exists(saved) ? saved : DefaultModel.Ensure(console);
        var vocabulary = Path.Combine(modelDirectory, "vocab.txt");
        if (!File.Exists(vocabulary)) throw new CommandLineException($"--model: {modelDirectory} has no vocab.txt; predict tokenizes with a BERT WordPiece vocabulary.");

        var labels = AdapterLabels.Read(adapter);
        if (labels is null) LogNoLabels(logger, adapter);
        var model = models.LoadPretrained(modelDirectory, TaskType.SequenceClassification,
            c => labels is null ? c : c with { NumLabelsValue = labels.Count, Id2Label = labels.Select((n, i) => (n, i)).ToDictionary(p => p.i.ToString(CultureInfo.InvariantCulture), p => p.n) });
        var names = labels ?? Enumerable.Range(0, model.Config.NumLabels)
            .Select(i => model.Config.Id2Label?.GetValueOrDefault(i.ToString(CultureInfo.InvariantCulture)) ?? $"LABEL_{i}").ToList();
        var peft = models.FromPretrained(model, adapter);
        peft.eval();

        var encoder = WordPieceEncoder.FromVocabulary(vocabulary, settings.MaxLength);
        const int batchSize = 32;
        for (int start = 0; start < texts.Count && !cancellationToken.IsCancellationRequested; start += batchSize)
        {
            var batch = texts.Skip(start).Take(batchSize).ToList();
            using var scope = torch.NewDisposeScope();
            using var noGrad = torch.no_grad();
            using var encoded = encoder.EncodeBatch(batch);
            var logits = peft.call(new ModelInputs { InputIds = encoded.InputIds, AttentionMask = encoded.AttentionMask }).Logits;
            var probabilities = torch.nn.functional.softmax(logits.to_type(torch.float32), dim: -1);
            var (best, index) = probabilities.max(dim: -1);
            var p = best.data<float>().ToArray();
            var ids = index.data<long>().ToArray();
            for (int i = 0; i < batch.Count; i++)
            {
                console.WriteLine($"{names[(int)ids[i]]}\t{p[i].ToString("F3", CultureInfo.InvariantCulture)}\t{batch[i].ReplaceLineEndings(" ")}");
            }
        }
        return Task.FromResult(cancellationToken.IsCancellationRequested ? 130 : 0);
    }

    private static IReadOnlyList<string> Texts(PredictOptions settings)
    {
        var texts = new List<string>(settings.Text ?? []);
        if (settings.Data is { Length: > 0 } data)
        {
            var path = CommandChecks.ExistingFile(data, "--data");
            texts.AddRange(Path.GetExtension(path).Equals(".txt", StringComparison.OrdinalIgnoreCase)
                ? File.ReadLines(path).Where(l => !string.IsNullOrWhiteSpace(l))
                : DataFileReader.ReadTexts(path));
        }
        if (texts.Count == 0) throw new CommandLineException("--text \"...\" (repeatable) or --data <file> is required.");
        return texts;
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "{Adapter} has no config.json with id2label; labels are named by the model's config")]
    private static partial void LogNoLabels(ILogger logger, string adapter);
}
