namespace Peft.Training;

/// <summary>
/// Hooks into <see cref="Trainer"/>'s loop (transformers' <c>TrainerCallback</c>). Every method has an empty
/// default, so a callback overrides only what it needs; to stop a run, cancel the token given to the trainer.
/// </summary>
public interface ITrainerCallback
{
    /// <summary>After each optimizer step.</summary>
    void OnStep(TrainingProgress progress) { }

    /// <summary>After each evaluation during training.</summary>
    void OnEvaluate(EvaluationResult evaluation) { }

    /// <summary>After a checkpoint is written to <paramref name="directory"/>.</summary>
    void OnSave(string directory, int step) { }

    /// <summary>At the end of each epoch (1-based).</summary>
    void OnEpochEnd(int epoch) { }
}
