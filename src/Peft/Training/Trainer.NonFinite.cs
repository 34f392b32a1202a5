using Microsoft.Extensions.Logging;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Peft.Training;

/// <summary>The checks that keep NaN and infinity out of the weights (and so out of every checkpoint and adapter).</summary>
public sealed partial class Trainer
{
    /// <summary>The first parameter of <paramref name="tensors"/> that is not all finite, or null; one device sync for the whole list.</summary>
    private static int? FirstNonFinite(IReadOnlyList<Tensor?> tensors)
    {
        var present = tensors.Select((t, i) => (Tensor: t, Index: i)).Where(p => p.Tensor is not null).ToList();
        if (present.Count == 0) return null;
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var finite = stack(present.Select(p => p.Tensor!.isfinite().all().cpu()).ToArray());
        if (finite.all().item<bool>()) return null;
        var flags = finite.data<bool>().ToArray();
        return present[Array.IndexOf(flags, false)].Index;
    }

    /// <summary>The first trainable parameter whose gradient has a NaN or infinity, by name, or null when all are finite.</summary>
    private static string? NonFiniteGradient(ITrainable trainable, IReadOnlyList<Parameter> parameters) =>
        FirstNonFinite(parameters.Select(p => p.grad).ToList()) is { } index ? NameOf(trainable, parameters[index]) : null;

    /// <summary>The first trainable parameter that holds a NaN or infinity, by name, or null when all are finite.</summary>
    private static string? NonFiniteParameter(ITrainable trainable, IReadOnlyList<Parameter> parameters) =>
        FirstNonFinite(parameters.Cast<Tensor?>().ToList()) is { } index ? NameOf(trainable, parameters[index]) : null;

    /// <summary>The parameter's name in the module (looked up only once something went wrong).</summary>
    private static string NameOf(ITrainable trainable, Parameter parameter) =>
        trainable.Module.named_parameters().FirstOrDefault(p => p.parameter.Handle == parameter.Handle).name ?? "(unnamed parameter)";

    private static NonFiniteTrainingException NonFinite(string what, int step, int epoch, double learningRate) => new(
        $"step {step} (epoch {epoch}): {what} is not finite (NaN or infinity) at learning rate {learningRate:G4}; training stopped before applying the step, " +
        "so no checkpoint or adapter holds it. Lower the learning rate, or skip such steps (TrainingOptions.SkipNonFiniteSteps, peft finetune --skip-nonfinite-steps).",
        step, epoch);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Step {Step} (epoch {Epoch}) skipped: {What} is not finite; {Skipped} step(s) skipped so far")]
    private static partial void LogSkippedStep(ILogger logger, int step, int epoch, string what, int skipped);
}
