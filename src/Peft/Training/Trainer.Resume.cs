using System.Text.Json;
using Microsoft.Extensions.Logging;
using Peft.Checkpoints;
using TorchSharp;

namespace Peft.Training;

/// <summary>
/// What a checkpoint holds so that a resumed run repeats the uninterrupted one step for step, dropout included: the
/// learnable weights, the optimizer, the torch CPU random-number state (dropout masks), the data order (a function of
/// the seed, the epoch, the training-set size and the batching, all recorded) and the learning-rate schedule.
/// </summary>
public sealed partial class Trainer
{
    private const string StateFileName = "trainer_state.json";
    private const string OptimizerFileName = "optimizer.bin";
    private const string RngFileName = "rng_state.safetensors";
    private const string CpuRngKey = "cpu";

    /// <summary>
    /// The weights, the optimizer, the random-number state and the trainer state, swapped in together
    /// (<see cref="AtomicDirectory"/>): a run killed while saving leaves the previous checkpoint of that name, or none,
    /// never weights of one step beside the state of another.
    /// </summary>
    private static void SaveCheckpoint(ITrainable trainable, TorchSharp.Modules.OptimizerHelper optimizer, TrainerState state, string directory) =>
        AtomicDirectory.Write(directory, staging =>
        {
            trainable.SaveCheckpoint(staging);
            optimizer.save_state_dict(Path.Combine(staging, OptimizerFileName));
            using var rng = torch.get_rng_state();
            SafeTensors.Save(Path.Combine(staging, RngFileName), [new(CpuRngKey, rng)]);
            File.WriteAllText(Path.Combine(staging, StateFileName), JsonSerializer.Serialize(state, PeftJson.Options));
        });

    /// <summary>
    /// Seeds the CUDA generators from the run's seed and the step about to run, when the model trains on a GPU.
    /// TorchSharp 0.107 can read and restore the CPU generator's state but not the CUDA ones', so their dropout masks
    /// are made a function of (seed, step) instead: an uninterrupted run and one resumed at any step draw the same masks.
    /// </summary>
    private static void SeedDeviceGenerators(IReadOnlyList<TorchSharp.Modules.Parameter> parameters, int seed, int step)
    {
        if (parameters.Count == 0 || parameters[0].device_type != DeviceType.CUDA) return;
        torch.cuda.manual_seed_all(StepSeed(seed, step));
    }

    /// <summary>
    /// The seed the CUDA generators get before step <paramref name="step"/> of a run seeded with <paramref name="seed"/>:
    /// distinct per (seed, step), so that consecutive steps do not share masks, and non-negative.
    /// </summary>
    /// <param name="seed"><see cref="TrainingOptions.Seed"/>.</param>
    /// <param name="step">Optimizer steps already taken.</param>
    public static long StepSeed(int seed, int step) =>
        (long)(unchecked((ulong)(uint)seed * 0x9E3779B97F4A7C15UL + (ulong)(uint)step * 0xBF58476D1CE4E5B9UL) >> 1);

    private TrainerState Resume(ITrainable trainable, TorchSharp.Modules.OptimizerHelper optimizer, string directory, TrainingPlan plan)
    {
        AtomicDirectory.Recover(directory);
        var statePath = Path.Combine(directory, StateFileName);
        if (!File.Exists(statePath)) throw new FileNotFoundException($"{statePath}: not found; --resume takes a checkpoint-epoch-N or checkpoint-step-N directory this trainer wrote.", statePath);
        var state = JsonSerializer.Deserialize<TrainerState>(File.ReadAllText(statePath), PeftJson.Options)
            ?? throw new InvalidDataException($"{statePath}: empty trainer state.");
        if (state.Plan is { } saved) CheckSameDataOrder(statePath, saved, plan);
        trainable.LoadCheckpoint(directory);
        optimizer.load_state_dict(Path.Combine(directory, OptimizerFileName));

        var rngPath = Path.Combine(directory, RngFileName);
        if (File.Exists(rngPath))
        {
            var rng = SafeTensors.Load(rngPath);
            if (!rng.TryGetValue(CpuRngKey, out var cpu)) throw new CheckpointException(rngPath, CpuRngKey, "the random-number state is missing.");
            torch.set_rng_state(cpu);
            foreach (var tensor in rng.Values) tensor.Dispose();
        }
        else
        {
            LogNoRngState(_logger, directory);
        }
        if (state.Plan is { } planned && (planned.Schedule, planned.TotalSteps, planned.WarmupSteps, planned.PeakLearningRate) != (plan.Schedule, plan.TotalSteps, plan.WarmupSteps, plan.PeakLearningRate)) LogKeptSchedule(_logger, directory, planned.TotalSteps, plan.TotalSteps);
        return state;
    }

    /// <summary>The batches a step consumes follow from these; a resume with others would train on other examples than the run it continues.</summary>
    private static void CheckSameDataOrder(string statePath, TrainingPlan saved, TrainingPlan now)
    {
        void Same(string option, int was, int @is)
        {
            if (was != @is) throw new InvalidDataException($"{statePath}: the checkpoint was written with {option} {was}, this run has {@is}; resuming would not see the same batches in the same order.");
        }
        Same("TrainingOptions.Seed", saved.Seed, now.Seed);
        Same("a training set of size", saved.TrainCount, now.TrainCount);
        Same("TrainingOptions.BatchSize", saved.BatchSize, now.BatchSize);
        Same("TrainingOptions.GradientAccumulationSteps", saved.GradientAccumulationSteps, now.GradientAccumulationSteps);
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "{Directory} has no random-number state (an older checkpoint): dropout masks after resuming differ from the uninterrupted run's")]
    private static partial void LogNoRngState(ILogger logger, string directory);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Resuming from {Directory} keeps the learning-rate schedule it planned ({Saved} steps); the options given now would plan {Now}")]
    private static partial void LogKeptSchedule(ILogger logger, string directory, int saved, int now);

    /// <summary>The learning-rate schedule and the data order of a run, saved with each checkpoint.</summary>
    private sealed record TrainingPlan(LearningRateSchedule Schedule, int TotalSteps, int WarmupSteps, double PeakLearningRate,
        int TrainCount, int Seed, int BatchSize, int GradientAccumulationSteps);

    private sealed class TrainerState
    {
        public int Epoch { get; set; }
        public int Step { get; set; }
        public int StepInEpoch { get; set; }
        public TrainingPlan? Plan { get; set; }
        public double? BestMetric { get; set; }
        public int? BestStep { get; set; }
        public string? BestCheckpoint { get; set; }
        public int EvaluationsWithoutImprovement { get; set; }
        public bool StoppedEarly { get; set; }
        public List<string> Checkpoints { get; set; } = [];
        public List<double> StepLosses { get; set; } = [];
        public List<int> SkippedSteps { get; set; } = [];
        public List<EvaluationResult> Evaluations { get; set; } = [];
    }
}
