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

    /// <summary>Language models: evaluation scores the prediction at t against the label at t + 1.</summary>
    public bool NextTokenAccuracy { get; init; }

    /// <summary>Where each epoch's checkpoint goes (<c>checkpoint-epoch-N</c>); null writes none.</summary>
    public string? OutputDirectory { get; init; }

    /// <summary>Checks the values and throws <see cref="ArgumentException"/> naming the first bad one.</summary>
    public void Validate()
    {
        if (Epochs <= 0) throw new ArgumentException($"Epochs must be positive, got {Epochs}.");
        if (BatchSize <= 0) throw new ArgumentException($"BatchSize must be positive, got {BatchSize}.");
        if (GradientAccumulationSteps <= 0) throw new ArgumentException($"GradientAccumulationSteps must be positive, got {GradientAccumulationSteps}.");
        if (!(LearningRate > 0)) throw new ArgumentException($"LearningRate must be positive, got {LearningRate}.");
        if (WarmupRatio is < 0 or > 1) throw new ArgumentException($"WarmupRatio must be in [0, 1], got {WarmupRatio}.");
        if (MaxGradNorm < 0) throw new ArgumentException($"MaxGradNorm must be ≥ 0, got {MaxGradNorm}.");
    }
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
public sealed record EvaluationResult(double Loss, double Accuracy, int Examples);

/// <summary>What a finished (or cancelled) run produced.</summary>
/// <param name="StepLosses">Loss of every optimizer step, in order (resumed runs include the steps before resuming).</param>
/// <param name="Evaluations">One evaluation per finished epoch.</param>
/// <param name="Cancelled">True when cancellation stopped the run early.</param>
/// <param name="Elapsed">Wall time of this call.</param>
public sealed record TrainingResult(IReadOnlyList<double> StepLosses, IReadOnlyList<EvaluationResult> Evaluations, bool Cancelled, TimeSpan Elapsed);
