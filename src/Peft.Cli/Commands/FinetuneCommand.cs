using System.Diagnostics;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Peft.Cli.Data;
using Peft.Cli.Hosting;
using Peft.Cli.Reporting;
using Peft.Methods.Lora;
using Peft.Modeling;
using Peft.Pretrained;
using Peft.Tokenizers;
using Peft.Training;
using Peft.Tuners;
using Spectre.Console;
using TorchSharp;

namespace Peft.Cli.Commands;

/// <summary>
/// <c>peft finetune</c>: trains LoRA and, for comparison, a linear probe and full fine-tuning of a
/// sequence classifier, then prints accuracy, trainable parameters, checkpoint size and time for
/// each, saves the LoRA adapter and checks that it reloads to the same accuracy. With no options:
/// all-MiniLM-L6-v2 on topics of Debian's fortunes.
/// </summary>
public sealed partial class FinetuneCommand(
    IOptions<FinetuneOptions> options, PeftModels models, Trainer trainer, IAnsiConsole console, ILogger<FinetuneCommand> logger) : ICliCommand
{
    /// <inheritdoc />
    public Task<int> RunAsync(CancellationToken cancellationToken)
    {
        var settings = options.Value;
        torch.set_num_threads(Environment.ProcessorCount);

        if (settings.IsCausalLM) return Task.FromResult(RunCausalLM(settings, cancellationToken));
        if (settings.IsImageClassification) return Task.FromResult(RunImageClassification(settings, cancellationToken));
        var modelDirectory = settings.Model is { Length: > 0 } given ? given : DefaultModel.Ensure(console);
        var vocabulary = Path.Combine(modelDirectory, "vocab.txt");
        if (!File.Exists(vocabulary))
        {
            throw new CommandLineException($"{modelDirectory} has no vocab.txt; finetune tokenizes with a BERT WordPiece vocabulary.");
        }
        var data = LoadData(settings);
        var encoder = WordPieceEncoder.FromVocabulary(vocabulary, settings.MaxLength);
        var train = ClassificationCollator.Encode(encoder.Encode, data.Train.Select(e => (e.Text, e.Label)));
        var test = ClassificationCollator.Encode(encoder.Encode, data.Test.Select(e => (e.Text, e.Label)));
        var collator = new ClassificationCollator(encoder.PadTokenId);
        ModelInputs Collate(IReadOnlyList<ClassificationExample> batch) => collator.Collate(batch);

        console.MarkupLineInterpolated($"[bold]Model[/] {modelDirectory}");
        console.MarkupLineInterpolated($"[bold]Data[/]  {data.Source}: {data.Train.Count} training and {data.Test.Count} test examples, labels {string.Join(", ", data.Labels)}");
        Directory.CreateDirectory(settings.Output);

        var results = new List<MethodResult>();
        foreach (var method in settings.MethodList)
        {
            if (cancellationToken.IsCancellationRequested) break;
            var result = RunMethod(method, settings, modelDirectory, data.Labels, () => LoadClassifier(modelDirectory, data.Labels, settings, TaskType.SequenceClassification), train, test, Collate, nextToken: false, cancellationToken);
            results.Add(result);
            if (result.Training.Cancelled) break;
        }
        return Task.FromResult(Report(results, settings,
            $"{Path.GetFileName(modelDirectory.TrimEnd('/'))} on {data.Source}, {data.Train.Count} train / {data.Test.Count} test examples, {settings.Epochs} epochs"));
    }

    /// <summary>
    /// Causal-LM fine-tuning on prompt + completion pairs: the completion tokens are learned, the
    /// prompt's are not; accuracy is next-token accuracy on the held-out completions.
    /// </summary>
    private int RunCausalLM(FinetuneOptions settings, CancellationToken cancellationToken)
    {
        var modelDirectory = settings.Model!;
        var tokenizer = PretrainedTokenizer.FromDirectory(modelDirectory);
        IReadOnlyList<int> Encode(string text) => tokenizer.Encode(text, addSpecialTokens: false);
        var pairs = DataFileReader.ReadPromptCompletion(settings.Data!, settings.OnBadLine, warning => LogBadLine(logger, warning)).ToArray();
        new Random(settings.Seed).Shuffle(pairs);
        var testCount = Math.Max(1, (int)Math.Round(pairs.Length * settings.TestFraction));
        if (pairs.Length - testCount < 1) throw new CommandLineException($"{settings.Data}: {pairs.Length} example(s) cannot be split into training and test sets.");
        var test = CausalLmCollator.Encode(Encode, pairs[..testCount], settings.MaxLength);
        var train = CausalLmCollator.Encode(Encode, pairs[testCount..], settings.MaxLength);
        var (_, config) = models.ReadConfig(modelDirectory);
        long pad = config.PadTokenId ?? (config.EosTokenIds.Count > 0 ? config.EosTokenIds[0] : 0);
        var collator = new CausalLmCollator(pad);
        ModelInputs Collate(IReadOnlyList<CausalLmExample> batch) => collator.Collate(batch);

        console.MarkupLineInterpolated($"[bold]Model[/] {modelDirectory} (causal LM)");
        console.MarkupLineInterpolated($"[bold]Data[/]  {settings.Data}: {train.Count} training and {test.Count} test pairs");
        Directory.CreateDirectory(settings.Output);
        var results = new List<MethodResult>();
        foreach (var method in settings.MethodList)
        {
            if (cancellationToken.IsCancellationRequested) break;
            var result = RunMethod(method, settings, modelDirectory, null, () => LoadCausalLM(modelDirectory, settings), train, test, Collate, nextToken: true, cancellationToken);
            results.Add(result);
            if (result.Training.Cancelled) break;
        }
        return Report(results, settings, $"{Path.GetFileName(modelDirectory.TrimEnd('/'))} on {settings.Data}, {train.Count} train / {test.Count} test pairs, {settings.Epochs} epochs");
    }

    private int Report(IReadOnlyList<MethodResult> results, FinetuneOptions settings, string heading)
    {
        if (results.Count == 0) return 130;
        console.Write(ResultsReport.ToTable(results));
        File.WriteAllText(Path.Combine(settings.Output, "results.md"), ResultsReport.ToMarkdown(results, heading));
        var chart = Path.Combine(settings.Output, "training.png");
        TrainingChart.Save(results, chart);
        console.MarkupLineInterpolated($"Adapter in [bold]{Path.Combine(settings.Output, "lora-adapter")}[/], table in results.md, chart in {chart}");
        return results.Any(r => r.Training.Cancelled) ? 130 : 0;
    }

    private PreTrainedModel LoadCausalLM(string modelDirectory, FinetuneOptions settings)
    {
        torch.manual_seed(settings.Seed);
        return models.LoadPretrained(modelDirectory, TaskType.CausalLM, QuantizeOptionChecks.LoadOptions(settings));
    }

    private ClassificationData LoadData(FinetuneOptions settings)
    {
        if (settings.Data is { Length: > 0 } path)
        {
            return ClassificationData.FromFile(path, settings.OnBadLine, warning => LogBadLine(logger, warning), settings.Seed, settings.TestFraction, settings.ExamplesPerLabel);
        }
        var categories = settings.Categories is { Length: > 0 } list
            ? list.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            : FortunesDataset.DefaultCategories;
        return ClassificationData.FromFortunes(categories, settings.Seed, 0.2, settings.ExamplesPerLabel);
    }

    private MethodResult RunMethod<TExample>(string method, FinetuneOptions settings, string modelDirectory, IReadOnlyList<string>? labels, Func<PreTrainedModel> load,
        IReadOnlyList<TExample> train, IReadOnlyList<TExample> test, Func<IReadOnlyList<TExample>, ModelInputs> collate, bool nextToken,
        CancellationToken cancellationToken)
    {
        var model = load();
        if (settings.GradientCheckpointing && !model.SupportsGradientCheckpointing)
        {
            throw new CommandLineException($"--gradient-checkpointing: not implemented for '{model.Config.ModelType}' models (every built-in architecture has it but ResNet, whose batch norms would count each batch twice).");
        }
        PeftModel? peft = null;
        ITrainable trainable;
        double learningRate;
        switch (method)
        {
            case "lora":
                peft = models.GetPeftModel(model, model.Task == TaskType.ImageClassification ? ImageLoraFor(settings, modelDirectory) : LoraFor(settings, model.Task, modelDirectory));
                trainable = Trainables.Adapter(peft);
                learningRate = settings.LearningRate;
                break;
            case "probe":
                // A linear probe trains the task head alone, whatever the architecture calls it.
                trainable = Trainables.Parameters(model, name => model.HeadModuleNames.Any(head => name.StartsWith(head + ".", StringComparison.Ordinal)));
                learningRate = settings.ProbeLearningRate;
                break;
            default:
                trainable = Trainables.Parameters(model, _ => true);
                learningRate = settings.FullLearningRate;
                break;
        }
        var trainingOptions = new TrainingOptions
        {
            Epochs = settings.Epochs,
            BatchSize = settings.BatchSize,
            GradientAccumulationSteps = settings.GradientAccumulation,
            LearningRate = learningRate,
            WarmupRatio = settings.WarmupRatio,
            MaxGradNorm = settings.MaxGradNorm,
            Seed = settings.Seed,
            OutputDirectory = Path.Combine(settings.Output, "checkpoints", method),
            NextTokenAccuracy = nextToken,
            GradientCheckpointing = settings.GradientCheckpointing,
            SkipNonFiniteSteps = settings.SkipNonfiniteSteps,
        };

        var clock = Stopwatch.StartNew();
        var training = TrainingProgressView.Run(console, method, settings.Epochs, progress => trainer.Train(trainable, train, test, collate, trainingOptions,
            resumeFrom: method == "lora" ? settings.Resume : null, progress: progress, cancellationToken: cancellationToken));
        clock.Stop();
        CheckpointPruning.Prune(trainingOptions.OutputDirectory!, training.Evaluations, settings.SaveTotalLimit);

        var module = (torch.nn.Module<ModelInputs, ModelOutputs>?)peft ?? model;
        var accuracy = Trainer.Evaluate(module, test, collate, settings.BatchSize, nextToken).Accuracy;
        var (trainableCount, allCount) = ParameterCounts.Of((torch.nn.Module?)peft ?? model);
        long checkpointBytes;
        double? reloaded = null;
        if (peft is not null)
        {
            var adapterDirectory = Path.Combine(settings.Output, "lora-adapter");
            peft.SavePretrained(adapterDirectory);
            if (labels is not null) AdapterLabels.Save(adapterDirectory, modelDirectory, labels);
            checkpointBytes = new FileInfo(Path.Combine(adapterDirectory, "adapter_model.safetensors")).Length;
            // The saved adapter, in a fresh model, must give the same predictions.
            var fresh = models.FromPretrained(load(), adapterDirectory);
            reloaded = Trainer.Evaluate(fresh, test, collate, settings.BatchSize, nextToken).Accuracy;
        }
        else
        {
            checkpointBytes = trainable.TrainableParameters.Sum(p => p.numel() * p.element_size());
        }
        LogMethodDone(logger, method, accuracy, trainableCount, clock.Elapsed.TotalSeconds);
        return new MethodResult(method, accuracy, trainableCount, allCount, checkpointBytes, clock.Elapsed, training, reloaded);
    }

    private PreTrainedModel LoadClassifier(string modelDirectory, IReadOnlyList<string> labels, FinetuneOptions settings, TaskType task)
    {
        torch.manual_seed(settings.Seed);
        var id2label = labels.Select((name, index) => (name, index)).ToDictionary(p => p.index.ToString(), p => p.name);
        return models.LoadPretrained(modelDirectory, task, QuantizeOptionChecks.LoadOptions(settings),
            config => config with { NumLabelsValue = labels.Count, Id2Label = id2label });
    }

    /// <summary>
    /// LoRA as the command trains it: the given targets (names, all-linear or a regular expression,
    /// see <see cref="TargetModuleOption"/>), else for classification every linear layer but the head
    /// (<c>all-linear</c>: BERT's query, key, value and dense layers), else the architecture's default targets.
    /// </summary>
    private static LoraConfig LoraFor(FinetuneOptions settings, TaskType task, string modelDirectory) => new()
    {
        TaskType = task,
        R = settings.Rank,
        LoraAlpha = settings.Alpha,
        LoraDropout = settings.Dropout,
        TargetModules = TargetModuleOption.Parse(settings.TargetModules)
            ?? (task == TaskType.SequenceClassification ? TargetModules.FromPattern(TargetModules.AllLinearValue) : null),
        // As PEFT records the model it was trained on; predict finds the base model through it.
        BaseModelNameOrPath = Path.GetFullPath(modelDirectory),
    };

    [LoggerMessage(Level = LogLevel.Warning, Message = "{Warning}")]
    private static partial void LogBadLine(ILogger logger, string warning);

    [LoggerMessage(Level = LogLevel.Information, Message = "{Method}: test accuracy {Accuracy:P2}, {Trainable} trainable parameters, {Seconds:F0} s")]
    private static partial void LogMethodDone(ILogger logger, string method, double accuracy, long trainable, double seconds);
}
