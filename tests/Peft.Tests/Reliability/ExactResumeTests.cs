using Peft.Methods.Lora;
using Peft.Modeling;
using Peft.Tests.Checkpoints;
using Peft.Tests.Training;
using Peft.Training;
using TorchSharp;

namespace Peft.Tests.Reliability;

/// <summary>
/// A run resumed from any checkpoint repeats the uninterrupted run's step losses bit for bit, with dropout on: the
/// checkpoint holds the random-number state, the data order and the schedule besides the weights and the optimizer.
/// </summary>
public class ExactResumeTests
{
    private static List<(long[] Ids, long Label)> Data() => TokenSevenTask.Data(40, seed: 11);

    private static ModelInputs Collate(IReadOnlyList<(long[] Ids, long Label)> batch) => TokenSevenTask.Collate(batch);

    /// <summary>LoRA with dropout 0.1 (and GPT-2's own dropouts), so every step draws random masks.</summary>
    private static ITrainable Fresh(int seed = 1234) => Trainables.Adapter(TokenSevenTask.FreshLora(seed, loraDropout: 0.1));

    private static TrainingOptions Options(string output) => new()
    {
        Epochs = 2, BatchSize = 8, LearningRate = 1e-2, Schedule = LearningRateSchedule.Cosine, WarmupSteps = 2,
        OutputDirectory = output, SaveStrategy = IntervalStrategy.Steps, SaveSteps = 1,
    };

    [Theory]
    [InlineData(1)]
    [InlineData(3)]
    [InlineData(5)] // the end of the first epoch
    [InlineData(8)]
    public void AResumedRunRepeatsTheUninterruptedLossesBitForBitWithDropout(int stoppedAfter)
    {
        using var straightDirectory = new ScratchDirectory();
        var straight = new Trainer().Train(Fresh(), Data(), null, Collate, Options(straightDirectory.Path));
        Assert.Equal(10, straight.StepLosses.Count);

        // Another process would start from another random state: a different seed stands for it.
        using var resumedDirectory = new ScratchDirectory();
        var resumed = new Trainer().Train(Fresh(seed: 99), Data(), null, Collate, Options(resumedDirectory.Path),
            resumeFrom: Path.Combine(straightDirectory.Path, $"checkpoint-step-{stoppedAfter}"));

        Assert.Equal(straight.StepLosses, resumed.StepLosses);
    }

    [Fact]
    public void WithoutTheRandomStateTheResumedLossesDiffer()
    {
        // Proves the test above can fail: dropout is on, and the restored random state is what makes the runs equal.
        using var straightDirectory = new ScratchDirectory();
        var straight = new Trainer().Train(Fresh(), Data(), null, Collate, Options(straightDirectory.Path));
        var checkpoint = Path.Combine(straightDirectory.Path, "checkpoint-step-3");
        File.Delete(Path.Combine(checkpoint, "rng_state.safetensors"));

        using var resumedDirectory = new ScratchDirectory();
        var resumed = new Trainer().Train(Fresh(seed: 99), Data(), null, Collate, Options(resumedDirectory.Path), resumeFrom: checkpoint);
        Assert.Equal(straight.StepLosses.Take(3), resumed.StepLosses.Take(3));
        Assert.NotEqual(straight.StepLosses[3], resumed.StepLosses[3]);
    }

    [Fact]
    public void ResumingWithAnotherBatchingOrSeedIsRefusedByName()
    {
        using var directory = new ScratchDirectory();
        new Trainer().Train(Fresh(), Data(), null, Collate, Options(directory.Path) with { Epochs = 1 });
        var checkpoint = Path.Combine(directory.Path, "checkpoint-step-2");
        using var other = new ScratchDirectory();

        var batch = Assert.Throws<InvalidDataException>(() => new Trainer().Train(Fresh(), Data(), null, Collate,
            Options(other.Path) with { BatchSize = 4 }, resumeFrom: checkpoint));
        Assert.Contains("TrainingOptions.BatchSize 8", batch.Message, StringComparison.Ordinal);
        var seed = Assert.Throws<InvalidDataException>(() => new Trainer().Train(Fresh(), Data(), null, Collate,
            Options(other.Path) with { Seed = 7 }, resumeFrom: checkpoint));
        Assert.Contains("TrainingOptions.Seed 42", seed.Message, StringComparison.Ordinal);
    }

    /// <summary>The CUDA generators, whose state TorchSharp cannot save, are seeded per step: every (seed, step) gets its own seed.</summary>
    [Fact]
    public void TheGpuGeneratorsSeedIsDistinctForEveryStepAndRunSeed()
    {
        var seeds = new HashSet<long>();
        foreach (var runSeed in new[] { 0, 1, 42, -1, int.MaxValue })
        {
            for (int step = 0; step < 1000; step++)
            {
                var seed = Trainer.StepSeed(runSeed, step);
                Assert.True(seed >= 0, $"{runSeed}/{step}: {seed}");
                Assert.True(seeds.Add(seed), $"{runSeed}/{step} repeats a seed");
                Assert.Equal(seed, Trainer.StepSeed(runSeed, step));
            }
        }
    }
}
