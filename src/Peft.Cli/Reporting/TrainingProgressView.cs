using System.Globalization;
using Peft.Training;
using Spectre.Console;

namespace Peft.Cli.Reporting;

/// <summary>
/// Shows a training run's progress: a live bar in a terminal, plain lines when the output is piped
/// or redirected (every tenth of the steps, after each evaluation, and always the last step, 100 %).
/// Log lines go through the same console, so Spectre.Console prints them above the bar, not over it.
/// </summary>
public static class TrainingProgressView
{
    /// <summary>Runs <paramref name="train"/> with a progress reporter for <paramref name="method"/>.</summary>
    public static TrainingResult Run(IAnsiConsole console, string method, int epochs, Func<IProgress<TrainingProgress>, TrainingResult> train)
    {
        if (!console.Profile.Capabilities.Interactive) return train(new LineProgress(console, method, epochs));

        TrainingResult result = null!;
        console.Progress()
            .Columns(new TaskDescriptionColumn { Alignment = Justify.Left }, new ProgressBarColumn(), new PercentageColumn(), new RemainingTimeColumn())
            .Start(context =>
            {
                var task = context.AddTask(Describe(method, 0, epochs, double.NaN, 0), maxValue: 1);
                result = train(new Reporter(p =>
                {
                    task.MaxValue = p.TotalSteps;
                    task.Value = p.Step;
                    task.Description = Markup.Escape(Describe(method, p.Epoch, epochs, p.Loss, p.ExamplesPerSecond)
                        + (p.Evaluation is { } evaluation ? $" · test acc {evaluation.Accuracy.ToString("P1", CultureInfo.InvariantCulture)}" : ""));
                }));
                task.StopTask();
            });
        return result;
    }

    /// <summary>"lora  epoch 2/3 · loss 0.4123 · 310 ex/s".</summary>
    public static string Describe(string method, int epoch, int epochs, double loss, double rate) =>
        double.IsNaN(loss)
            ? $"{method,-5} epoch {epoch}/{epochs}"
            : string.Create(CultureInfo.InvariantCulture, $"{method,-5} epoch {epoch}/{epochs} · loss {loss:F4} · {rate:F0} ex/s");

    private sealed class Reporter(Action<TrainingProgress> report) : IProgress<TrainingProgress>
    {
        public void Report(TrainingProgress value) => report(value);
    }

    /// <summary>Lines for a log file or a pipe: no cursor movement, and the last step always printed.</summary>
    private sealed class LineProgress(IAnsiConsole console, string method, int epochs) : IProgress<TrainingProgress>
    {
        private int _lastTenth = -1;

        public void Report(TrainingProgress value)
        {
            var tenth = value.TotalSteps > 0 ? value.Step * 10 / value.TotalSteps : 10;
            if (value.Evaluation is null && tenth == _lastTenth && value.Step != value.TotalSteps) return;
            if (value.Evaluation is null && value.Step == value.TotalSteps && _lastTenth == 10) return;
            _lastTenth = tenth;
            var percent = value.TotalSteps > 0 ? 100.0 * value.Step / value.TotalSteps : 100.0;
            var line = string.Create(CultureInfo.InvariantCulture,
                $"{Describe(method, value.Epoch, epochs, value.Loss, value.ExamplesPerSecond)} · step {value.Step}/{value.TotalSteps} ({percent:F0} %)");
            if (value.Evaluation is { } evaluation) line += string.Create(CultureInfo.InvariantCulture, $" · test loss {evaluation.Loss:F4}, acc {evaluation.Accuracy:P1}");
            console.WriteLine(line);
        }
    }
}
