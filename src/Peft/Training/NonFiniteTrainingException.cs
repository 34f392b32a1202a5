namespace Peft.Training;

/// <summary>
/// Training produced a loss, gradient or parameter that is NaN or infinite. Thrown by
/// <see cref="Trainer"/> before the step is applied (so nothing non-finite is saved), unless
/// <see cref="TrainingOptions.SkipNonFiniteSteps"/> asks for such steps to be skipped.
/// </summary>
/// <param name="message">What was not finite, where, and what to do.</param>
/// <param name="step">The 1-based optimizer step that produced it.</param>
/// <param name="epoch">The 1-based epoch of that step.</param>
public sealed class NonFiniteTrainingException(string message, int step, int epoch) : Exception(message)
{
    /// <summary>The 1-based optimizer step that produced the non-finite value.</summary>
    public int Step { get; } = step;

    /// <summary>The 1-based epoch of <see cref="Step"/>.</summary>
    public int Epoch { get; } = epoch;
}
