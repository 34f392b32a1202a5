using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Peft.Cli.Data;
using Peft.Cli.Hosting;
using Peft.Pretrained;
using Peft.Training;
using Spectre.Console;

namespace Peft.Cli.Commands;

/// <summary><c>peft evaluate</c>: loss and accuracy of a sequence classifier (plus adapter) on a --data file.</summary>
public sealed partial class EvaluateCommand(IOptions<EvaluateOptions> options, PeftModels models, IAnsiConsole console, ILogger<EvaluateCommand> logger) : ICliCommand
{
    /// <inheritdoc />
    public Task<int> RunAsync(CancellationToken cancellationToken)
    {
        var settings = options.Value;
        var modelDirectory = CommandChecks.ExistingDirectory(settings.Model, "--model");
        var dataPath = CommandChecks.ExistingFile(settings.Data, "--data");
        var adapter = settings.Adapter is { Length: > 0 } given ? CommandChecks.ExistingDirectory(given, "--adapter") : null;
        var vocabulary = Path.Combine(modelDirectory, "vocab.txt");
        if (!File.Exists(vocabulary)) throw new CommandLineException($"--model: {modelDirectory} has no vocab.txt; evaluate tokenizes with a BERT WordPiece vocabulary.");

        // The classifier's label order: as given, else as saved with the adapter, else the file's labels sorted.
        var knownLabels = settings.Labels?.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            ?? (adapter is not null ? AdapterLabels.Read(adapter) : null);
        var (labels, rows) = DataFileReader.ReadLabelled(dataPath, settings.OnBadLine, warning => LogBadLine(logger, warning), knownLabels);
        var index = labels.Select((name, i) => (name, i)).ToDictionary(p => p.name, p => p.i);
        var encoder = WordPieceEncoder.FromVocabulary(vocabulary, settings.MaxLength);
        var examples = ClassificationCollator.Encode(encoder.Encode, rows.Select(r => (r.Text, index[r.Label])));

        var model = models.LoadPretrained(modelDirectory, TaskType.SequenceClassification, QuantizeOptionChecks.LoadOptions(settings), config => config with { NumLabelsValue = labels.Count });
        TorchSharp.torch.nn.Module<Modeling.ModelInputs, Modeling.ModelOutputs> evaluated = adapter is not null ? models.FromPretrained(model, adapter) : model;
        var result = Trainer.Evaluate(evaluated, examples, new ClassificationCollator(encoder.PadTokenId).Collate, settings.BatchSize);
        console.WriteLine($"{result.Examples} examples: loss {result.Loss:F4}, accuracy {result.Accuracy:P2}");
        return Task.FromResult(0);
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "{Warning}")]
    private static partial void LogBadLine(ILogger logger, string warning);
}
