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
        var modelDirectory = settings.Model ?? throw new CommandLineException("peft evaluate needs --model <directory>.");
        var dataPath = settings.Data ?? throw new CommandLineException("peft evaluate needs --data <file.jsonl|file.csv>.");
        var vocabulary = Path.Combine(modelDirectory, "vocab.txt");
        if (!File.Exists(vocabulary)) throw new CommandLineException($"{modelDirectory} has no vocab.txt; evaluate tokenizes with a BERT WordPiece vocabulary.");

        var knownLabels = settings.Labels?.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        var (labels, rows) = DataFileReader.ReadLabelled(dataPath, settings.OnBadLine, warning => LogBadLine(logger, warning), knownLabels);
        var encoder = WordPieceEncoder.FromVocabulary(vocabulary, settings.MaxLength);
        var examples = ClassificationCollator.Encode(encoder.Encode, rows.Select(r => (r.Text, labels.ToList().IndexOf(r.Label))));

        var model = models.LoadPretrained(modelDirectory, TaskType.SequenceClassification, config => config with { NumLabelsValue = labels.Count });
        TorchSharp.torch.nn.Module<Modeling.ModelInputs, Modeling.ModelOutputs> evaluated = settings.Adapter is { } adapter ? models.FromPretrained(model, adapter) : model;
        var result = Trainer.Evaluate(evaluated, examples, new ClassificationCollator(encoder.PadTokenId).Collate, settings.BatchSize);
        console.WriteLine($"{result.Examples} examples: loss {result.Loss:F4}, accuracy {result.Accuracy:P2}");
        return Task.FromResult(0);
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "{Warning}")]
    private static partial void LogBadLine(ILogger logger, string warning);
}
