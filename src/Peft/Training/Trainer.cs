using System.Diagnostics;
using System.Text.Json;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Peft.Checkpoints;
using Peft.Modeling;
using TorchSharp;
using static TorchSharp.torch;

namespace Peft.Training;

/// <summary>
/// The training loop: AdamW, a warm-up then the chosen schedule (linear, cosine, constant), gradient
/// accumulation, gradient clipping, evaluation and checkpoints per epoch or every N steps, a limit on the
/// checkpoints kept (the best is always kept), early stopping, callbacks, and resuming from a checkpoint.
/// Registered by <c>AddPeft()</c>.
/// </summary>
public sealed partial class Trainer(ILogger<Trainer>? logger = null)
{
    private readonly ILogger _logger = logger ?? NullLogger<Trainer>.Instance;

    /// <summary>
    /// <see cref="Train{TExample}"/> on a worker thread, so a host or UI thread is not blocked; the token stops
    /// training after the current step (the result then says <see cref="TrainingResult.Cancelled"/>).
    /// </summary>
    public Task<TrainingResult> TrainAsync<TExample>(
        ITrainable trainable,
        IReadOnlyList<TExample> train,
        IReadOnlyList<TExample>? evaluation,
        Func<IReadOnlyList<TExample>, ModelInputs> collate,
        TrainingOptions options,
        string? resumeFrom = null,
        IProgress<TrainingProgress>? progress = null,
        IReadOnlyList<ITrainerCallback>? callbacks = null,
        CancellationToken cancellationToken = default) =>
        Task.Run(() => Train(trainable, train, evaluation, collate, options, resumeFrom, progress, cancellationToken, callbacks), CancellationToken.None);

    /// <summary>
    /// Trains <paramref name="trainable"/> on <paramref name="train"/>. Cancellation stops after the
    /// current step; the checkpoints written so far stay on disk.
    /// </summary>
    /// <typeparam name="TExample">One training example.</typeparam>
    /// <param name="trainable">What learns.</param>
    /// <param name="train">The training set.</param>
    /// <param name="evaluation">Evaluated as <see cref="TrainingOptions.EvaluationStrategy"/> says, when given.</param>
    /// <param name="collate">Turns a batch of examples into model inputs (labels included).</param>
    /// <param name="options">The hyper-parameters.</param>
    /// <param name="resumeFrom">A checkpoint directory this trainer wrote, to continue from.</param>
    /// <param name="progress">Receives a report after every optimizer step and evaluation.</param>
    /// <param name="cancellationToken">Stops training between steps.</param>
    /// <param name="callbacks">Called on each step, evaluation, save and epoch end.</param>
    public TrainingResult Train<TExample>(
        ITrainable trainable,
        IReadOnlyList<TExample> train,
        IReadOnlyList<TExample>? evaluation,
        Func<IReadOnlyList<TExample>, ModelInputs> collate,
        TrainingOptions options,
        string? resumeFrom = null,
        IProgress<TrainingProgress>? progress = null,
        CancellationToken cancellationToken = default,
        IReadOnlyList<ITrainerCallback>? callbacks = null)
    {
        options.Validate();
        if (options.GradientCheckpointing) EnableGradientCheckpointing(trainable.Module);
        if (train.Count == 0) throw new ArgumentException("The training set is empty.", nameof(train));
        callbacks ??= [];
        var clock = Stopwatch.StartNew();
        var parameters = trainable.TrainableParameters;
        using var optimizer = torch.optim.AdamW(parameters, lr: options.LearningRate, weight_decay: options.WeightDecay);

        var batchesPerEpoch = (train.Count + options.BatchSize - 1) / options.BatchSize;
        var stepsPerEpoch = (batchesPerEpoch + options.GradientAccumulationSteps - 1) / options.GradientAccumulationSteps;
        var totalSteps = stepsPerEpoch * options.Epochs;
        var warmupSteps = options.Schedule == LearningRateSchedule.Constant ? 0 : options.WarmupSteps ?? (int)Math.Ceiling(totalSteps * options.WarmupRatio);

        var plan = new TrainingPlan(options.Schedule, totalSteps, warmupSteps, options.LearningRate, train.Count, options.Seed, options.BatchSize, options.GradientAccumulationSteps);
        var state = new TrainerState { Plan = plan };
        if (resumeFrom is not null)
        {
            state = Resume(trainable, optimizer, resumeFrom, plan);
            LogResumed(_logger, resumeFrom, state.Epoch, state.Step);
        }
        // A resumed run keeps the schedule its checkpoint planned (as transformers restores scheduler.pt).
        var schedule = state.Plan ?? plan;
        var canEvaluate = evaluation is { Count: > 0 } && options.EvaluationStrategy != IntervalStrategy.No;
        if (options.EarlyStoppingPatience is not null && !canEvaluate) throw new ArgumentException("EarlyStoppingPatience needs an evaluation set.", nameof(evaluation));

        TrainingResult Result(bool cancelled) =>
            new(state.StepLosses, state.Evaluations, cancelled, clock.Elapsed, state.StoppedEarly, state.BestCheckpoint) { SkippedSteps = state.SkippedSteps };

        var examplesSeen = 0;
        for (int epoch = state.Epoch + 1; epoch <= options.Epochs; epoch++)
        {
            trainable.Module.train();
            var order = Shuffle(train.Count, options.Seed, epoch);
            var batches = order.Chunk(options.BatchSize).ToList();
            // A checkpoint saved mid-epoch resumes after the batches its steps consumed.
            var firstBatch = state.StepInEpoch * options.GradientAccumulationSteps;
            for (int first = firstBatch; first < batches.Count; first += options.GradientAccumulationSteps)
            {
                if (cancellationToken.IsCancellationRequested)
                {
                    LogCancelled(_logger, epoch, state.Step);
                    return Result(true);
                }
                var group = batches.Skip(first).Take(options.GradientAccumulationSteps).ToList();
                var learningRate = LearningRateAt(schedule.Schedule, state.Step, schedule.TotalSteps, schedule.WarmupSteps, schedule.PeakLearningRate);
                foreach (var parameterGroup in optimizer.ParamGroups) parameterGroup.LearningRate = learningRate;

                optimizer.zero_grad();
                SeedDeviceGenerators(parameters, options.Seed, state.Step);
                double loss = 0;
                string? nonFinite = null;
                foreach (var batch in group)
                {
                    examplesSeen += batch.Length;
                    // The rest of a step that is already lost is not computed.
                    if (nonFinite is not null) continue;
                    using var scope = torch.NewDisposeScope();
                    var inputs = collate(batch.Select(i => train[i]).ToList());
                    var output = trainable.Module.call(inputs);
                    // A cache (prefix tuning hands its prefixes in as one) lives outside dispose scopes.
                    output.PastKeyValues?.Dispose();
                    var batchLoss = output.Loss ?? throw new InvalidOperationException("The model returned no loss: do the inputs carry labels?");
                    var value = batchLoss.item<float>();
                    loss += value / group.Count;
                    if (!float.IsFinite(value))
                    {
                        nonFinite = $"the loss ({value})";
                        continue;
                    }
                    (batchLoss / group.Count).backward();
                }
                // Checked before clipping: clipping an infinite norm would turn the gradients into NaN or zeros and hide it.
                if (nonFinite is null && NonFiniteGradient(trainable, parameters) is { } gradient) nonFinite = $"the gradient of {gradient}";
                if (nonFinite is not null)
                {
                    if (!options.SkipNonFiniteSteps) throw NonFinite(nonFinite, state.Step + 1, epoch, learningRate);
                    // As a mixed-precision trainer's skipped step: the batches are consumed and the schedule moves on, the weights do not change.
                    optimizer.zero_grad();
                    state.SkippedSteps.Add(state.Step + 1);
                    LogSkippedStep(_logger, state.Step + 1, epoch, nonFinite, state.SkippedSteps.Count);
                }
                else
                {
                    if (options.MaxGradNorm > 0) nn.utils.clip_grad_norm_(parameters, options.MaxGradNorm);
                    optimizer.step();
                    // Finite gradients can still overflow a weight (a huge learning rate); that step cannot be skipped any more.
                    if (NonFiniteParameter(trainable, parameters) is { } parameter)
                    {
                        throw NonFinite($"parameter {parameter} after the update", state.Step + 1, epoch, learningRate);
                    }
                    trainable.AfterOptimizerStep(state.Step);
                }
                state.Step++;
                state.StepInEpoch++;
                state.StepLosses.Add(loss);
                var report = new TrainingProgress(epoch, state.Step, totalSteps, loss, learningRate, examplesSeen / clock.Elapsed.TotalSeconds);
                progress?.Report(report);
                foreach (var callback in callbacks) callback.OnStep(report);

                var lastOfEpoch = first + options.GradientAccumulationSteps >= batches.Count;
                if (lastOfEpoch) (state.Epoch, state.StepInEpoch) = (epoch, 0);
                var evaluated = canEvaluate && Due(options.EvaluationStrategy, options.EvalSteps, state.Step, lastOfEpoch)
                    && EvaluateAndTrack(trainable, evaluation!, collate, options, state, epoch, progress, callbacks, examplesSeen / clock.Elapsed.TotalSeconds, totalSteps);
                if (options.OutputDirectory is { } outputDirectory && Due(options.SaveStrategy, options.SaveSteps, state.Step, lastOfEpoch))
                {
                    var directory = Path.Combine(outputDirectory, lastOfEpoch && options.SaveStrategy == IntervalStrategy.Epoch ? $"checkpoint-epoch-{epoch}" : $"checkpoint-step-{state.Step}");
                    Save(trainable, optimizer, state, directory, evaluated ? state.Evaluations[^1] : null, options, callbacks);
                }
                if (state.StoppedEarly)
                {
                    LogStoppedEarly(_logger, state.Step, options.EarlyStoppingPatience!.Value, options.MetricForBestModel);
                    trainable.Module.eval();
                    return Result(false);
                }
            }
            (state.Epoch, state.StepInEpoch) = (epoch, 0);
            foreach (var callback in callbacks) callback.OnEpochEnd(epoch);
        }
        trainable.Module.eval();
        return Result(false);
    }

    private static void EnableGradientCheckpointing(nn.Module module)
    {
        var stacks = module.modules().OfType<IGradientCheckpointing>().ToList();
        if (stacks.Count == 0)
        {
            throw new NotSupportedException($"TrainingOptions.GradientCheckpointing: {module.GetType().Name}'s architecture does not implement gradient checkpointing (every built-in architecture does but ResNet; docs/PERFORMANCE.md).");
        }
        foreach (var stack in stacks) stack.GradientCheckpointing = true;
    }

    private static bool Due(IntervalStrategy strategy, int every, int step, bool endOfEpoch) => strategy switch
    {
        IntervalStrategy.Epoch => endOfEpoch,
        IntervalStrategy.Steps => step % every == 0,
        _ => false,
    };

    /// <summary>Evaluates, records the best metric and the early-stopping count (transformers' EarlyStoppingCallback); returns true.</summary>
    private bool EvaluateAndTrack<TExample>(ITrainable trainable, IReadOnlyList<TExample> evaluation, Func<IReadOnlyList<TExample>, ModelInputs> collate,
        TrainingOptions options, TrainerState state, int epoch, IProgress<TrainingProgress>? progress, IReadOnlyList<ITrainerCallback> callbacks,
        double examplesPerSecond, int totalSteps)
    {
        var result = Evaluate(trainable.Module, evaluation, collate, options.BatchSize, options.NextTokenAccuracy) with { Step = state.Step, Epoch = epoch };
        trainable.Module.train();
        state.Evaluations.Add(result);
        LogEvaluated(_logger, epoch, state.Step, result.Loss, result.Accuracy);
        progress?.Report(new TrainingProgress(epoch, state.Step, totalSteps, state.StepLosses[^1], 0, examplesPerSecond, result));
        foreach (var callback in callbacks) callback.OnEvaluate(result);

        var metric = result.Metric(options.MetricForBestModel);
        var better = state.BestMetric is not { } best || (options.Maximizes ? metric > best : metric < best);
        var improvedEnough = state.BestMetric is not { } previous || (better && Math.Abs(metric - previous) > options.EarlyStoppingThreshold);
        if (better) (state.BestMetric, state.BestStep) = (metric, state.Step);
        state.EvaluationsWithoutImprovement = improvedEnough ? 0 : state.EvaluationsWithoutImprovement + 1;
        if (options.EarlyStoppingPatience is { } patience && state.EvaluationsWithoutImprovement >= patience) state.StoppedEarly = true;
        return true;
    }

    /// <summary>Writes a checkpoint, then deletes the oldest beyond <see cref="TrainingOptions.SaveTotalLimit"/>, never the best.</summary>
    private void Save(ITrainable trainable, TorchSharp.Modules.OptimizerHelper optimizer, TrainerState state, string directory,
        EvaluationResult? evaluation, TrainingOptions options, IReadOnlyList<ITrainerCallback> callbacks)
    {
        state.Checkpoints.Remove(directory);
        state.Checkpoints.Add(directory);
        if (evaluation is not null && state.BestStep == evaluation.Step) state.BestCheckpoint = directory;
        // The rotation is decided first, so the state saved in the checkpoint is final and the folder is written once, atomically.
        var rotated = new List<string>();
        // As transformers: the best checkpoint survives rotation, so limit 1 can leave two (the best and the last).
        while (options.SaveTotalLimit is { } limit && state.Checkpoints.Count > limit)
        {
            var oldest = state.Checkpoints.FirstOrDefault(c => c != state.BestCheckpoint && c != directory);
            if (oldest is null) break;
            state.Checkpoints.Remove(oldest);
            rotated.Add(oldest);
        }
        SaveCheckpoint(trainable, optimizer, state, directory);
        LogCheckpoint(_logger, directory);
        foreach (var callback in callbacks) callback.OnSave(directory, state.Step);
        foreach (var oldest in rotated)
        {
            if (Directory.Exists(oldest)) Directory.Delete(oldest, recursive: true);
            LogCheckpointDeleted(_logger, oldest);
        }
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
        LearningRateAt(LearningRateSchedule.Linear, step, totalSteps, warmupSteps, peak);

    /// <summary>
    /// The learning rate of optimizer step <paramref name="step"/> (0-based) under <paramref name="schedule"/>, as
    /// transformers' get_*_schedule_with_warmup, except that warm-up counts the step being taken ((step + 1) /
    /// warm-up), so the first step does not run at rate 0.
    /// </summary>
    public static double LearningRateAt(LearningRateSchedule schedule, int step, int totalSteps, int warmupSteps, double peak)
    {
        if (step < warmupSteps && schedule != LearningRateSchedule.Constant) return peak * (step + 1) / warmupSteps;
        var progress = (double)(step - warmupSteps) / Math.Max(1, totalSteps - warmupSteps);
        return schedule switch
        {
            LearningRateSchedule.Linear => peak * Math.Max(0.0, (double)(totalSteps - step) / Math.Max(1, totalSteps - warmupSteps)),
            LearningRateSchedule.Cosine => peak * Math.Max(0.0, 0.5 * (1.0 + Math.Cos(Math.PI * progress))),
            LearningRateSchedule.Constant or LearningRateSchedule.ConstantWithWarmup => peak,
            _ => throw new ArgumentOutOfRangeException(nameof(schedule), schedule, "unknown learning-rate schedule."),
        };
    }

    private static int[] Shuffle(int count, int seed, int epoch)
    {
        var order = Enumerable.Range(0, count).ToArray();
        // Not HashCode.Combine: it is randomised per process, and a resumed run must see the same order.
        new Random(unchecked(seed * 1_000_003 + epoch)).Shuffle(order);
        return order;
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Resumed from {Directory} after epoch {Epoch}, step {Step}")]
    private static partial void LogResumed(ILogger logger, string directory, int epoch, int step);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Training cancelled in epoch {Epoch} after step {Step}; the checkpoints written so far are kept")]
    private static partial void LogCancelled(ILogger logger, int epoch, int step);

    [LoggerMessage(Level = LogLevel.Information, Message = "Epoch {Epoch}, step {Step}: evaluation loss {Loss:F4}, accuracy {Accuracy:P2}")]
    private static partial void LogEvaluated(ILogger logger, int epoch, int step, double loss, double accuracy);

    [LoggerMessage(Level = LogLevel.Information, Message = "Early stopping after step {Step}: {Patience} evaluations without a better {Metric}")]
    private static partial void LogStoppedEarly(ILogger logger, int step, int patience, string metric);

    [LoggerMessage(Level = LogLevel.Information, Message = "Checkpoint {Directory} deleted (save_total_limit)")]
    private static partial void LogCheckpointDeleted(ILogger logger, string directory);

    [LoggerMessage(Level = LogLevel.Information, Message = "Checkpoint written to {Directory}")]
    private static partial void LogCheckpoint(ILogger logger, string directory);
}
