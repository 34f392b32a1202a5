using Peft.Methods.Lora;
using Peft.Modeling;
using Peft.Tests.Checkpoints;
using Peft.Training;
using TorchSharp;
using static Peft.Tests.Training.TokenSevenTask;

namespace Peft.Tests.Training;

public class TrainerTests
{
    [Fact]
    public void ResumedRunContinuesTheSameLossCurve()
    {
        using var scratch = new ScratchDirectory();
        var train = Data(40, 1);
        var options = new TrainingOptions { Epochs = 2, BatchSize = 8, LearningRate = 1e-2, GradientAccumulationSteps = 2, OutputDirectory = scratch.Path };
        var straight = new Trainer().Train(Trainables.Adapter(FreshLora()), train, null, Collate, options);

        // The same plan, interrupted once the first epoch's checkpoint is written (3 steps an epoch), then resumed.
        using var interruptedDirectory = new ScratchDirectory();
        using var cancel = new CancellationTokenSource();
        var interrupted = new Trainer().Train(Trainables.Adapter(FreshLora()), train, null, Collate, options with { OutputDirectory = interruptedDirectory.Path },
            progress: new SynchronousProgress(p => { if (p.Step == 3) cancel.Cancel(); }), cancellationToken: cancel.Token);
        Assert.True(interrupted.Cancelled);
        var resumed = new Trainer().Train(Trainables.Adapter(FreshLora()), train, null, Collate, options with { OutputDirectory = interruptedDirectory.Path },
            resumeFrom: Path.Combine(interruptedDirectory.Path, "checkpoint-epoch-1"));

        Assert.Equal(straight.StepLosses.Count, resumed.StepLosses.Count);
        for (int i = 0; i < straight.StepLosses.Count; i++)
        {
            Assert.True(Math.Abs(straight.StepLosses[i] - resumed.StepLosses[i]) < 1e-5, $"step {i}: {straight.StepLosses[i]} vs {resumed.StepLosses[i]}");
        }
    }

    [Fact]
    public void TrainingLowersTheLossAndEvaluatesEachEpoch()
    {
        var train = Data(64, 2);
        var evaluation = Data(32, 3);
        var result = new Trainer().Train(Trainables.Adapter(FreshLora()), train, evaluation, Collate,
            new TrainingOptions { Epochs = 4, BatchSize = 16, LearningRate = 2e-2 });
        Assert.Equal(4, result.Evaluations.Count);
        Assert.True(result.StepLosses.TakeLast(4).Average() < result.StepLosses.Take(4).Average());
        Assert.All(result.Evaluations, e => Assert.InRange(e.Accuracy, 0, 1));
    }

    [Fact]
    public void CancellationStopsBeforeTheNextStep()
    {
        using var cancel = new CancellationTokenSource();
        var progress = new SynchronousProgress(p => { if (p.Step == 2) cancel.Cancel(); });
        var result = new Trainer().Train(Trainables.Adapter(FreshLora()), Data(64, 4), null, Collate,
            new TrainingOptions { Epochs = 1, BatchSize = 8 }, progress: progress, cancellationToken: cancel.Token);
        Assert.True(result.Cancelled);
        Assert.Equal(2, result.StepLosses.Count);
    }

    [Theory]
    [InlineData(0, 1e-3 / 10)]
    [InlineData(9, 1e-3)]
    [InlineData(10, 1e-3)]
    [InlineData(55, 1e-3 * 45 / 90)]
    [InlineData(99, 1e-3 * 1 / 90)]
    public void LearningRateWarmsUpThenDecaysLinearly(int step, double expected) =>
        Assert.Equal(expected, Trainer.LearningRateAt(step, totalSteps: 100, warmupSteps: 10, peak: 1e-3), 12);

    private sealed class SynchronousProgress(Action<TrainingProgress> report) : IProgress<TrainingProgress>
    {
        public void Report(TrainingProgress value) => report(value);
    }
}
