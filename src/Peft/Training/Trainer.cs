using System.Diagnostics;
using System.Text.Json;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Peft.Modeling;
using TorchSharp;
using static TorchSharp.torch;

namespace Peft.Training;

/// <summary>
/// The training loop: AdamW, linear warm-up then linear decay, gradient accumulation, gradient
/// clipping, evaluation after each epoch, a checkpoint after each epoch, and resuming from one.
/// </summary>
public sealed partial class Trainer(ILogger<Trainer>? logger = null)
{
    private const string StateFileName = "trainer_state.json";
    private const string OptimizerFileName = "optimizer.bin";
    private readonly ILogger _logger = logger ?? NullLogger<Trainer>.Instance;

    /// <summary>
    /// Trains <paramref name="trainable"/> on <paramref name="train"/>. Cancellation stops after the
    /// current step; the last epoch checkpoint stays on disk.
    /// </summary>
    /// <typeparam name="TExample">One training example.</typeparam>
    /// <param name="trainable">What learns.</param>
    /// <param name="train">The training set.</param>
    /// <param name="evaluation">Evaluated after each epoch when given.</param>
    /// <param name="collate">Turns a batch of examples into model inputs (labels included).</param>
    /// <param name="options">The hyper-parameters.</param>
    /// <param name="resumeFrom">A checkpoint directory this trainer wrote, to continue from.</param>
    /// <param name="progress">Receives a report after every optimizer step and evaluation.</param>
    /// <param name="cancellationToken">Stops training between steps.</param>
    public TrainingResult Train<TExample>(
        ITrainable trainable,
        IReadOnlyList<TExample> train,
        IReadOnlyList<TExample>? evaluation,
        Func<IReadOnlyList<TExample>, ModelInputs> collate,
        TrainingOptions options,
        string? resumeFrom = null,
        IProgress<TrainingProgress>? progress = null,
        CancellationToken cancellationToken = default)
    {
        options.Validate();
        if (train.Count == 0) throw new ArgumentException("The training set is empty.", nameof(train));
        var clock = Stopwatch.StartNew();
        var parameters = trainable.TrainableParameters;
        using var optimizer = torch.optim.AdamW(parameters, lr: options.LearningRate, weight_decay: options.WeightDecay);

        var batchesPerEpoch = (train.Count + options.BatchSize - 1) / options.BatchSize;
        var stepsPerEpoch = (batchesPerEpoch + options.GradientAccumulationSteps - 1) / options.GradientAccumulationSteps;
        var totalSteps = stepsPerEpoch * options.Epochs;
        var warmupSteps = (int)Math.Ceiling(totalSteps * options.WarmupRatio);

        var state = new TrainerState();
        if (resumeFrom is not null)
        {
            state = Resume(trainable, optimizer, resumeFrom);
            LogResumed(_logger, resumeFrom, state.Epoch, state.Step);
        }

        var examplesSeen = 0;
        for (int epoch = state.Epoch + 1; epoch <= options.Epochs; epoch++)
        {
            trainable.Module.train();
            var order = Shuffle(train.Count, options.Seed, epoch);
            var batches = order.Chunk(options.BatchSize).ToList();
            for (int first = 0; first < batches.Count; first += options.GradientAccumulationSteps)
            {
                if (cancellationToken.IsCancellationRequested)
                {
                    LogCancelled(_logger, epoch, state.Step);
                    return new TrainingResult(state.StepLosses, state.Evaluations, true, clock.Elapsed);
                }
                var group = batches.Skip(first).Take(options.GradientAccumulationSteps).ToList();
                var learningRate = LearningRateAt(state.Step, totalSteps, warmupSteps, options.LearningRate);
                foreach (var parameterGroup in optimizer.ParamGroups) parameterGroup.LearningRate = learningRate;

                optimizer.zero_grad();
                double loss = 0;
                foreach (var batch in group)
                {
                    using var scope = torch.NewDisposeScope();
                    var inputs = collate(batch.Select(i => train[i]).ToList());
                    var output = trainable.Module.call(inputs);
                    var batchLoss = output.Loss ?? throw new InvalidOperationException("The model returned no loss: do the inputs carry labels?");
                    (batchLoss / group.Count).backward();
                    loss += batchLoss.item<float>() / group.Count;
                    // A cache (prefix tuning hands its prefixes in as one) lives outside dispose scopes.
                    output.PastKeyValues?.Dispose();
                    examplesSeen += batch.Length;
                }
                if (options.MaxGradNorm > 0) nn.utils.clip_grad_norm_(parameters, options.MaxGradNorm);
                optimizer.step();
                trainable.AfterOptimizerStep(state.Step);
                state.Step++;
                state.StepLosses.Add(loss);
                progress?.Report(new TrainingProgress(epoch, state.Step, totalSteps, loss, learningRate, examplesSeen / clock.Elapsed.TotalSeconds));
            }

            state.Epoch = epoch;
            if (evaluation is { Count: > 0 })
            {
                var result = Evaluate(trainable.Module, evaluation, collate, options.BatchSize, options.NextTokenAccuracy);
                state.Evaluations.Add(result);
                LogEvaluated(_logger, epoch, result.Loss, result.Accuracy);
                progress?.Report(new TrainingProgress(epoch, state.Step, totalSteps, state.StepLosses[^1], 0, examplesSeen / clock.Elapsed.TotalSeconds, result));
            }
            if (options.OutputDirectory is { } outputDirectory)
            {
                var directory = Path.Combine(outputDirectory, $"checkpoint-epoch-{epoch}");
                SaveCheckpoint(trainable, optimizer, state, directory);
                LogCheckpoint(_logger, directory);
            }
        }
        trainable.Module.eval();
        return new TrainingResult(state.StepLosses, state.Evaluations, false, clock.Elapsed);
    }

    /// <summary>Mean loss and accuracy of <paramref name="model"/> on <paramref name="examples"/>, in eval mode without gradients.</summary>
    /// <param name="model">The model.</param>
    /// <param name="examples">The examples.</param>
    /// <param name="collate">Turns a batch into inputs with labels.</param>
    /// <param name="batchSize">Examples per forward pass.</param>
    /// <param name="nextToken">Language models: logits at t are scored against the label at t + 1.</param>
    public static EvaluationResult Evaluate<TExample>(nn.Module<ModelInputs, ModelOutputs> model, IReadOnlyList<TExample> examples,
        Func<IReadOnlyList<TExample>, ModelInputs> collate, int batchSize, bool nextToken = false)
    {
        model.eval();
        using var noGrad = torch.no_grad();
        double lossSum = 0;
        long correct = 0, counted = 0;
        foreach (var batch in examples.Chunk(batchSize))
        {
            using var scope = torch.NewDisposeScope();
            var inputs = collate(batch);
            var output = model.call(inputs);
            output.PastKeyValues?.Dispose();
            if (output.Loss is { } loss) lossSum += loss.item<float>() * batch.Length;
            if (inputs.Labels is { } labels && output.Logits.dim() == labels.dim() + 1 && output.Logits.shape[..^1].SequenceEqual(labels.shape))
            {
                var predicted = output.Logits.argmax(-1);
                if (nextToken)
                {
                    predicted = predicted[.., ..^1];
                    labels = labels[.., 1..];
                }
                var kept = labels.ne(Losses.IgnoreIndex);
                correct += predicted.eq(labels).logical_and(kept).sum().item<long>();
                counted += kept.sum().item<long>();
            }
        }
        return new EvaluationResult(lossSum / examples.Count, counted == 0 ? double.NaN : (double)correct / counted, examples.Count);
    }

    /// <summary>Linear warm-up from 0 to the peak, then linear decay to 0 (get_linear_schedule_with_warmup).</summary>
    public static double LearningRateAt(int step, int totalSteps, int warmupSteps, double peak) =>
        step < warmupSteps
            ? peak * (step + 1) / warmupSteps
            : peak * Math.Max(0.0, (double)(totalSteps - step) / Math.Max(1, totalSteps - warmupSteps));

    private static int[] Shuffle(int count, int seed, int epoch)
    {
        var order = Enumerable.Range(0, count).ToArray();
        // Not HashCode.Combine: it is randomised per process, and a resumed run must see the same order.
        new Random(unchecked(seed * 1_000_003 + epoch)).Shuffle(order);
        return order;
    }

    private static void SaveCheckpoint(ITrainable trainable, TorchSharp.Modules.OptimizerHelper optimizer, TrainerState state, string directory)
    {
        Directory.CreateDirectory(directory);
        trainable.SaveCheckpoint(directory);
        optimizer.save_state_dict(Path.Combine(directory, OptimizerFileName));
        File.WriteAllText(Path.Combine(directory, StateFileName), JsonSerializer.Serialize(state, PeftJson.Options));
    }

    private static TrainerState Resume(ITrainable trainable, TorchSharp.Modules.OptimizerHelper optimizer, string directory)
    {
        var statePath = Path.Combine(directory, StateFileName);
        if (!File.Exists(statePath)) throw new FileNotFoundException($"{statePath}: not found; --resume takes a checkpoint-epoch-N directory this trainer wrote.", statePath);
        var state = JsonSerializer.Deserialize<TrainerState>(File.ReadAllText(statePath), PeftJson.Options)
            ?? throw new InvalidDataException($"{statePath}: empty trainer state.");
        trainable.LoadCheckpoint(directory);
        optimizer.load_state_dict(Path.Combine(directory, OptimizerFileName));
        return state;
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Resumed from {Directory} after epoch {Epoch}, step {Step}")]
    private static partial void LogResumed(ILogger logger, string directory, int epoch, int step);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Training cancelled in epoch {Epoch} after step {Step}; the last epoch checkpoint is kept")]
    private static partial void LogCancelled(ILogger logger, int epoch, int step);

    [LoggerMessage(Level = LogLevel.Information, Message = "Epoch {Epoch}: evaluation loss {Loss:F4}, accuracy {Accuracy:P2}")]
    private static partial void LogEvaluated(ILogger logger, int epoch, double loss, double accuracy);

    [LoggerMessage(Level = LogLevel.Information, Message = "Checkpoint written to {Directory}")]
    private static partial void LogCheckpoint(ILogger logger, string directory);

    private sealed class TrainerState
    {
        public int Epoch { get; set; }
        public int Step { get; set; }
        public List<double> StepLosses { get; set; } = [];
        public List<EvaluationResult> Evaluations { get; set; } = [];
    }
}
