using Microsoft.Extensions.DependencyInjection;
using Peft.Methods.Lora;
using Peft.Modeling;
using Peft.Tests.Checkpoints;
using Peft.Training;
using TorchSharp;
using static Peft.Tests.Training.TokenSevenTask;

namespace Peft.Tests.Training;

/// <summary>Schedules, step-wise evaluation and saving, save_total_limit, early stopping, callbacks, TrainAsync, DI, DeleteAdapter.</summary>
public class TrainerScheduleTests
{

    private static List<ClassificationExample> Data(int count, int seed)
    {
        var random = new Random(seed);
        return Enumerable.Range(0, count).Select(_ =>
        {
            var ids = Enumerable.Range(0, 8).Select(_ => random.Next(1, 128)).ToArray();
            return new ClassificationExample(ids, ids.Contains(7) ? 1 : 0);
        }).ToList();
    }

    private sealed class Recorder : ITrainerCallback
    {
        public List<int> Steps { get; } = [];
        public List<EvaluationResult> Evaluations { get; } = [];
        public List<string> Saves { get; } = [];
        public List<int> Epochs { get; } = [];

        public void OnStep(TrainingProgress progress) => Steps.Add(progress.Step);
        public void OnEvaluate(EvaluationResult evaluation) => Evaluations.Add(evaluation);
        public void OnSave(string directory, int step) => Saves.Add(directory);
        public void OnEpochEnd(int epoch) => Epochs.Add(epoch);
    }

    [Theory]
    [InlineData(LearningRateSchedule.Linear, 0.5)]
    [InlineData(LearningRateSchedule.Cosine, 0.5)]
    [InlineData(LearningRateSchedule.Constant, 1.0)]
    [InlineData(LearningRateSchedule.ConstantWithWarmup, 1.0)]
    public void Schedules_warm_up_then_follow_their_shape(LearningRateSchedule schedule, double atMiddle)
    {
        // 10 warm-up steps of 110: step 4 is at 5/10 of the peak (constant has no warm-up); step 60 is half-way through the rest.
        Assert.Equal(schedule == LearningRateSchedule.Constant ? 1.0 : 0.5, Trainer.LearningRateAt(schedule, 4, 110, 10, 1.0), 12);
        Assert.Equal(atMiddle, Trainer.LearningRateAt(schedule, 60, 110, 10, 1.0), 12);
        Assert.Equal(schedule is LearningRateSchedule.Linear or LearningRateSchedule.Cosine ? 0.0 : 1.0, Trainer.LearningRateAt(schedule, 110, 110, 10, 1.0), 12);
        Assert.Equal(0.5 * (1 + Math.Cos(Math.PI * 0.25)), Trainer.LearningRateAt(LearningRateSchedule.Cosine, 35, 110, 10, 1.0), 12);
    }

    [Fact]
    public void Steps_strategies_evaluate_and_save_every_n_steps_keeping_the_last_and_the_best()
    {
        using var scratch = new ScratchDirectory();
        var recorder = new Recorder();
        var collator = new ClassificationCollator(0);
        var options = new TrainingOptions
        {
            Epochs = 2, BatchSize = 8, LearningRate = 1e-2, OutputDirectory = scratch.Path,
            EvaluationStrategy = IntervalStrategy.Steps, EvalSteps = 2, SaveStrategy = IntervalStrategy.Steps, SaveSteps = 2, SaveTotalLimit = 1,
        };

        var result = new Trainer().Train(Trainables.Adapter(FreshLora()), Data(40, 1), Data(16, 2), collator.Collate, options, callbacks: [recorder]);

        // 5 steps an epoch, 10 in all: evaluations and saves after steps 2, 4, 6, 8, 10.
        Assert.Equal(Enumerable.Range(1, 10), recorder.Steps);
        Assert.Equal([2, 4, 6, 8, 10], result.Evaluations.Select(e => e.Step));
        Assert.Equal([2, 4, 6, 8, 10], recorder.Evaluations.Select(e => e.Step));
        Assert.Equal([1, 2], recorder.Epochs);
        Assert.Equal(5, recorder.Saves.Count);
        var best = result.Evaluations.MinBy(e => e.Loss)!;
        Assert.Equal(Path.Combine(scratch.Path, $"checkpoint-step-{best.Step}"), result.BestCheckpoint);
        var kept = Directory.GetDirectories(scratch.Path).Order().ToList();
        Assert.Equal(new[] { result.BestCheckpoint!, Path.Combine(scratch.Path, "checkpoint-step-10") }.Distinct().Order(), kept);
    }

    [Fact]
    public void Early_stopping_ends_the_run_after_patience_evaluations_without_improvement()
    {
        var collator = new ClassificationCollator(0);
        // A threshold no change can pass: every evaluation after the first counts as no improvement.
        var options = new TrainingOptions
        {
            Epochs = 3, BatchSize = 8, LearningRate = 1e-3, EvaluationStrategy = IntervalStrategy.Steps, EvalSteps = 1,
            EarlyStoppingPatience = 2, EarlyStoppingThreshold = 1e9, MetricForBestModel = "accuracy",
        };

        var result = new Trainer().Train(Trainables.Adapter(FreshLora()), Data(40, 3), Data(16, 4), collator.Collate, options);

        Assert.True(result.StoppedEarly);
        Assert.False(result.Cancelled);
        Assert.Equal(3, result.StepLosses.Count);
        Assert.Equal(3, result.Evaluations.Count);
    }

    [Fact]
    public void Options_that_cannot_work_are_refused_by_name()
    {
        var collator = new ClassificationCollator(0);
        var trainable = Trainables.Adapter(FreshLora());
        Assert.Contains("MetricForBestModel", Assert.Throws<ArgumentException>(() =>
            new Trainer().Train(trainable, Data(8, 5), null, collator.Collate, new TrainingOptions { MetricForBestModel = "f1" })).Message);
        Assert.Contains("EarlyStoppingPatience", Assert.Throws<ArgumentException>(() =>
            new Trainer().Train(trainable, Data(8, 5), null, collator.Collate, new TrainingOptions { EarlyStoppingPatience = 1 })).Message);
        Assert.Contains("SaveTotalLimit", Assert.Throws<ArgumentException>(() =>
            new Trainer().Train(trainable, Data(8, 5), null, collator.Collate, new TrainingOptions { SaveTotalLimit = 0 })).Message);
    }

    [Fact]
    public async Task TrainAsync_trains_off_the_calling_thread_and_honours_cancellation()
    {
        var collator = new ClassificationCollator(0);
        var caller = Environment.CurrentManagedThreadId;
        var threads = new List<int>();
        using var cancel = new CancellationTokenSource();
        var progress = new ThreadProgress(p => { threads.Add(Environment.CurrentManagedThreadId); if (p.Step == 2) cancel.Cancel(); });

        var result = await new Trainer().TrainAsync(Trainables.Adapter(FreshLora()), Data(40, 6), null, collator.Collate,
            new TrainingOptions { Epochs = 1, BatchSize = 8 }, progress: progress, cancellationToken: cancel.Token);

        Assert.True(result.Cancelled);
        Assert.Equal(2, result.StepLosses.Count);
        Assert.DoesNotContain(caller, threads);
    }

    [Fact]
    public void AddPeft_registers_the_trainer()
    {
        using var provider = new ServiceCollection().AddPeft(peft => peft.AddBuiltInMethods().AddBuiltInBackbones()).BuildServiceProvider();

        Assert.NotNull(provider.GetRequiredService<Trainer>());
    }

    [Fact]
    public void DeleteAdapter_removes_an_inactive_adapter_and_refuses_the_active_one()
    {
        var peft = FreshLora();
        peft.AddAdapter("second", new LoraConfig { R = 2, LoraAlpha = 4, TaskType = TaskType.SequenceClassification, ModulesToSave = ["score"] });
        var ids = torch.tensor(new long[] { 5, 9, 7, 3 }, [1, 4]);
        var before = peft.call(new ModelInputs { InputIds = ids }).Logits.detach().clone();

        var refused = Assert.Throws<InvalidOperationException>(() => peft.DeleteAdapter(PeftModel.DefaultAdapterName));
        Assert.Contains("SetAdapter", refused.Message);
        Assert.Throws<ArgumentException>(() => peft.DeleteAdapter("missing"));
        peft.DeleteAdapter("second");

        Assert.Equal([PeftModel.DefaultAdapterName], peft.Adapters.Keys);
        Assert.DoesNotContain(peft.named_parameters(), p => p.name.Contains(".second", StringComparison.Ordinal));
        Assert.Throws<ArgumentException>(() => peft.SetAdapter("second"));
        Assert.True(before.allclose(peft.call(new ModelInputs { InputIds = ids }).Logits));
    }
}

/// <summary>Reports on the training thread (Progress&lt;T&gt; would post to the thread pool).</summary>
internal sealed class ThreadProgress(Action<TrainingProgress> report) : IProgress<TrainingProgress>
{
    public void Report(TrainingProgress value) => report(value);
}
