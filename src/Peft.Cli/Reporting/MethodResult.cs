using Peft.Training;

namespace Peft.Cli.Reporting;

/// <summary>What one training method achieved, for the comparison table and chart.</summary>
/// <param name="Method">lora, probe or full.</param>
/// <param name="Accuracy">Test accuracy after training.</param>
/// <param name="TrainableParameters">Parameters the optimizer updated.</param>
/// <param name="AllParameters">All parameters of the trained model.</param>
/// <param name="CheckpointBytes">Size of what must be stored to reproduce the result (adapter file, head, or full weights).</param>
/// <param name="Elapsed">Training wall time.</param>
/// <param name="Training">Loss per step and evaluations per epoch.</param>
/// <param name="ReloadedAccuracy">Accuracy of the saved artefact reloaded into a fresh model, when checked.</param>
public sealed record MethodResult(string Method, double Accuracy, long TrainableParameters, long AllParameters, long CheckpointBytes,
    TimeSpan Elapsed, TrainingResult Training, double? ReloadedAccuracy = null);
