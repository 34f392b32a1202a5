using Peft.Modeling;
namespace Peft.Training;

/// <summary>How <see cref="Trainer"/> trains: the Hugging Face Trainer's usual knobs.</summary>
public sealed record TrainingOptions
{
    /// <summary>Passes over the training set.</summary>
    public int Epochs { get; init; } = 3;

    /// <summary>Examples per forward pass.</summary>
    public int BatchSize { get; init; } = 16;

    /// <summary>Forward passes whose gradients are summed before one optimizer step.</summary>
    public int GradientAccumulationSteps { get; init; } = 1;

    /// <summary>Peak learning rate of AdamW.</summary>
    public double LearningRate { get; init; } = 5e-4;

    /// <summary>AdamW's decoupled weight decay.</summary>
    public double WeightDecay { get; init; } = 0.01;

    /// <summary>Fraction of optimizer steps spent warming the learning rate up linearly from 0.</summary>
    public double WarmupRatio { get; init; } = 0.06;

    /// <summary>Gradients are rescaled so their global L2 norm is at most this (0 turns clipping off).</summary>
    public double MaxGradNorm { get; init; } = 1.0;

    /// <summary>Seed of the shuffling (each epoch's order is a function of the seed and the epoch).</summary>
    public int Seed { get; init; } = 42;

    /// <summary>
    /// Recompute each transformer layer in backward instead of keeping its activations (transformers'
    /// <c>gradient_checkpointing=True</c>; see <see cref="PreTrainedModel.GradientCheckpointingEnable"/>). Refused by
    /// name when the model's architecture does not implement it.
    /// </summary>
    public bool GradientCheckpointing { get; init; }

    /// <summary>
    /// What to do with a step whose loss or gradient is NaN or infinite: false (the default) stops
    /// training with a <see cref="NonFiniteTrainingException"/> naming the step; true skips the step as
    /// mixed-precision trainers do (its batches are consumed, the weights are not updated, the step is
    /// logged and listed in <see cref="TrainingResult.SkippedSteps"/>).
    /// </summary>
    public bool SkipNonFiniteSteps { get; init; }

    /// <summary>Language models: evaluation scores the prediction at t against the label at t + 1.</summary>
    public bool NextTokenAccuracy { get; init; }

    /// <summary>Where checkpoints go (<c>checkpoint-epoch-N</c>, <c>checkpoint-step-N</c>); null writes none.</summary>
    public string? OutputDirectory { get; init; }

    /// <summary>The learning-rate schedule after warm-up (transformers' <c>lr_scheduler_type</c>).</summary>
    public LearningRateSchedule Schedule { get; init; } = LearningRateSchedule.Linear;

    /// <summary>Warm-up steps; when set it overrides <see cref="WarmupRatio"/> (transformers' <c>warmup_steps</c>).</summary>
    public int? WarmupSteps { get; init; }

    /// <summary>When to evaluate (transformers' <c>eval_strategy</c>); needs an evaluation set.</summary>
    public IntervalStrategy EvaluationStrategy { get; init; } = IntervalStrategy.Epoch;

    /// <summary>Optimizer steps between evaluations under <see cref="IntervalStrategy.Steps"/>.</summary>
    public int EvalSteps { get; init; } = 500;

    /// <summary>When to write a checkpoint (transformers' <c>save_strategy</c>); needs <see cref="OutputDirectory"/>.</summary>
    public IntervalStrategy SaveStrategy { get; init; } = IntervalStrategy.Epoch;

    /// <summary>Optimizer steps between checkpoints under <see cref="IntervalStrategy.Steps"/>.</summary>
    public int SaveSteps { get; init; } = 500;

    /// <summary>
    /// At most this many checkpoints stay on disk, the oldest deleted first, except the best one (by
    /// <see cref="MetricForBestModel"/>), which is kept too (transformers' <c>save_total_limit</c>); null keeps all.
    /// </summary>
    public int? SaveTotalLimit { get; init; }

    /// <summary>The evaluation metric that ranks checkpoints and drives early stopping: <c>loss</c> or <c>accuracy</c>.</summary>
    public string MetricForBestModel { get; init; } = "loss";

    /// <summary>Whether a larger metric is better; null: true for accuracy, false for loss.</summary>
    public bool? GreaterIsBetter { get; init; }

    /// <summary>Stop after this many evaluations without an improvement larger than <see cref="EarlyStoppingThreshold"/>; null never stops early.</summary>
    public int? EarlyStoppingPatience { get; init; }

    /// <summary>How much better the metric must get to count as an improvement for early stopping.</summary>
    public double EarlyStoppingThreshold { get; init; }

    /// <summary>Whether a larger <see cref="MetricForBestModel"/> is better.</summary>
    public bool Maximizes => GreaterIsBetter ?? MetricForBestModel == "accuracy";

    /// <summary>Checks the values and throws <see cref="ArgumentException"/> naming the first bad one.</summary>
    public void Validate()
    {
        if (Epochs <= 0) throw new ArgumentException($"Epochs must be positive, got {Epochs}.");
        if (BatchSize <= 0) throw new ArgumentException($"BatchSize must be positive, got {BatchSize}.");
        if (GradientAccumulationSteps <= 0) throw new ArgumentException($"GradientAccumulationSteps must be positive, got {GradientAccumulationSteps}.");
        if (!(LearningRate > 0)) throw new ArgumentException($"LearningRate must be positive, got {LearningRate}.");
        if (WarmupRatio is < 0 or > 1) throw new ArgumentException($"WarmupRatio must be in [0, 1], got {WarmupRatio}.");
        if (MaxGradNorm < 0) throw new ArgumentException($"MaxGradNorm must be ≥ 0, got {MaxGradNorm}.");
        if (WarmupSteps < 0) throw new ArgumentException($"WarmupSteps must be ≥ 0, got {WarmupSteps}.");
        if (EvaluationStrategy == IntervalStrategy.Steps && EvalSteps <= 0) throw new ArgumentException($"EvalSteps must be positive with EvaluationStrategy Steps, got {EvalSteps}.");
        if (SaveStrategy == IntervalStrategy.Steps && SaveSteps <= 0) throw new ArgumentException($"SaveSteps must be positive with SaveStrategy Steps, got {SaveSteps}.");
        if (SaveTotalLimit <= 0) throw new ArgumentException($"SaveTotalLimit must be positive (or null to keep all), got {SaveTotalLimit}.");
        if (MetricForBestModel is not ("loss" or "accuracy")) throw new ArgumentException($"MetricForBestModel must be \"loss\" or \"accuracy\", got \"{MetricForBestModel}\".");
        if (EarlyStoppingPatience <= 0) throw new ArgumentException($"EarlyStoppingPatience must be positive (or null), got {EarlyStoppingPatience}.");
        if (EarlyStoppingPatience is not null && EvaluationStrategy == IntervalStrategy.No)
            throw new ArgumentException("EarlyStoppingPatience needs evaluations: EvaluationStrategy is No.");
        if (EarlyStoppingThreshold < 0) throw new ArgumentException($"EarlyStoppingThreshold must be ≥ 0, got {EarlyStoppingThreshold}.");
    }
}

/// <summary>The learning-rate schedules of transformers' <c>SchedulerType</c>; each warms up linearly first.</summary>
public enum LearningRateSchedule
{
    /// <summary><c>linear</c>: decays linearly to 0 at the last step.</summary>
    Linear,
    /// <summary><c>cosine</c>: half a cosine from the peak to 0.</summary>
    Cosine,
    /// <summary><c>constant</c>: the peak throughout, no warm-up.</summary>
    Constant,
    /// <summary><c>constant_with_warmup</c>: warm-up, then the peak.</summary>
    ConstantWithWarmup,
}

/// <summary>When evaluation or saving happens (transformers' <c>IntervalStrategy</c>).</summary>
public enum IntervalStrategy
{
    /// <summary>Never.</summary>
    No,
    /// <summary>After every epoch.</summary>
    Epoch,
    /// <summary>Every N optimizer steps.</summary>
    Steps,
}

/// <summary>One report of progress: after every optimizer step, and after each evaluation.</summary>
/// <param name="Epoch">1-based epoch.</param>
/// <param name="Step">Optimizer steps done.</param>
/// <param name="TotalSteps">Optimizer steps planned.</param>
/// <param name="Loss">Mean loss of the last step's batches.</param>
/// <param name="LearningRate">The learning rate used for the last step.</param>
/// <param name="ExamplesPerSecond">Throughput since training (or resuming) began.</param>
/// <param name="Evaluation">Set on reports made right after an evaluation.</param>
public sealed record TrainingProgress(int Epoch, int Step, int TotalSteps, double Loss, double LearningRate, double ExamplesPerSecond, EvaluationResult? Evaluation = null);

/// <summary>Loss and accuracy on an evaluation set.</summary>
/// <param name="Loss">Mean loss over the examples.</param>
/// <param name="Accuracy">Share of examples (classification) or tokens (token classification) predicted right; NaN when there are no labels to compare.</param>
/// <param name="Examples">How many examples were evaluated.</param>
public sealed record EvaluationResult(double Loss, double Accuracy, int Examples)
{
    /// <summary>The optimizer step after which it was measured (0 outside training).</summary>
    public int Step { get; init; }

    /// <summary>The epoch in which it was measured (0 outside training).</summary>
    public int Epoch { get; init; }

    /// <summary>The value of <paramref name="metric"/> (<c>loss</c> or <c>accuracy</c>).</summary>
    public double Metric(string metric) => metric == "accuracy" ? Accuracy : Loss;
}

/// <summary>What a finished (or cancelled) run produced.</summary>
/// <param name="StepLosses">Loss of every optimizer step, in order (resumed runs include the steps before resuming).</param>
/// <param name="Evaluations">Every evaluation, in order (per epoch or every N steps).</param>
/// <param name="Cancelled">True when cancellation stopped the run early.</param>
/// <param name="Elapsed">Wall time of this call.</param>
/// <param name="StoppedEarly">True when early stopping ended the run.</param>
/// <param name="BestCheckpoint">The checkpoint with the best evaluation metric, when one was saved right after an evaluation.</param>
public sealed record TrainingResult(IReadOnlyList<double> StepLosses, IReadOnlyList<EvaluationResult> Evaluations, bool Cancelled, TimeSpan Elapsed,
    bool StoppedEarly = false, string? BestCheckpoint = null)
{
    /// <summary>The 1-based steps skipped because their loss or gradient was not finite (<see cref="TrainingOptions.SkipNonFiniteSteps"/>).</summary>
    public IReadOnlyList<int> SkippedSteps { get; init; } = [];
}
