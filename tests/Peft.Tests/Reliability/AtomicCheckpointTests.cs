using System.Text.Json.Nodes;
using Peft.Methods.Lora;
using Peft.Modeling;
using Peft.Tests.Checkpoints;
using Peft.Tests.Training;
using Peft.Training;
using TorchSharp;

namespace Peft.Tests.Reliability;

/// <summary>Trainer checkpoints go through the atomic folder writer: a save that fails half-way leaves the old checkpoint.</summary>
public class AtomicCheckpointTests
{
    private static List<(long[] Ids, long Label)> Data() =>
        Enumerable.Range(0, 16).Select(i => (Enumerable.Range(0, 8).Select(j => (long)((i * 7 + j * 3) % 120 + 1)).ToArray(), (long)(i % 2))).ToList();

    private static ModelInputs Collate(IReadOnlyList<(long[] Ids, long Label)> batch) => TokenSevenTask.Collate(batch);

    private static ITrainable Lora(int seed)
    {
        torch.manual_seed(seed);
        var model = PeftModels.Default.LoadPretrained(TokenSevenTask.Model, TaskType.SequenceClassification);
        return Trainables.Adapter(PeftModels.Default.GetPeftModel(model, new LoraConfig { R = 2, TaskType = TaskType.SequenceClassification }));
    }

    private static Dictionary<string, byte[]> Contents(string directory) =>
        Directory.GetFiles(directory, "*", SearchOption.AllDirectories).ToDictionary(f => Path.GetRelativePath(directory, f), File.ReadAllBytes);

    [Fact]
    public void ACheckpointSaveThatFailsHalfWayLeavesTheOldCheckpointByteForByte()
    {
        using var scratch = new ScratchDirectory();
        var options = new TrainingOptions { Epochs = 1, BatchSize = 8, LearningRate = 1e-2, OutputDirectory = scratch.Path, SaveStrategy = IntervalStrategy.Steps, SaveSteps = 1 };
        new Trainer().Train(Lora(1), Data(), null, Collate, options);
        var checkpoint = Path.Combine(scratch.Path, "checkpoint-step-2");
        var before = Contents(checkpoint);

        // Another run into the same folder, whose second save writes its adapter and then fails (a full disk, a kill).
        var failing = new FailingSecondSave(Lora(2));
        Assert.Throws<IOException>(() => new Trainer().Train(failing, Data(), null, Collate, options));

        var after = Contents(checkpoint);
        Assert.Equal(before.Keys.Order(), after.Keys.Order());
        foreach (var (file, bytes) in before) Assert.True(bytes.AsSpan().SequenceEqual(after[file]), $"{file} changed");
        Assert.Empty(Directory.GetDirectories(scratch.Path, ".checkpoint-step-2*"));
    }

    [Fact]
    public void TheStateInACheckpointListsTheCheckpointsLeftAfterRotation()
    {
        using var scratch = new ScratchDirectory();
        var options = new TrainingOptions
        {
            Epochs = 1, BatchSize = 4, LearningRate = 1e-2, OutputDirectory = scratch.Path, SaveStrategy = IntervalStrategy.Steps, SaveSteps = 1, SaveTotalLimit = 2,
        };
        new Trainer().Train(Lora(1), Data(), null, Collate, options);
        Assert.Equal(["checkpoint-step-3", "checkpoint-step-4"], Directory.GetDirectories(scratch.Path).Select(Path.GetFileName).Order());
        var state = JsonNode.Parse(File.ReadAllText(Path.Combine(scratch.Path, "checkpoint-step-4", "trainer_state.json")))!;
        var listed = state.AsObject().Single(p => p.Key.Equals("checkpoints", StringComparison.OrdinalIgnoreCase)).Value!.AsArray();
        Assert.Equal(["checkpoint-step-3", "checkpoint-step-4"], listed.Select(c => Path.GetFileName(c!.GetValue<string>())));
    }

    private sealed class FailingSecondSave(ITrainable inner) : ITrainable
    {
        private int _saves;

        public torch.nn.Module<ModelInputs, ModelOutputs> Module => inner.Module;

        public IReadOnlyList<TorchSharp.Modules.Parameter> TrainableParameters => inner.TrainableParameters;

        public void SaveCheckpoint(string directory)
        {
            inner.SaveCheckpoint(directory);
            if (++_saves == 2) throw new IOException("No space left on device (simulated)");
        }

        public void LoadCheckpoint(string directory) => inner.LoadCheckpoint(directory);
    }
}
