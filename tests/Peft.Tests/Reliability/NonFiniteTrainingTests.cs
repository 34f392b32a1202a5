using Peft.Checkpoints;
using Peft.Methods.Lora;
using Peft.Modeling;
using Peft.Tests.Checkpoints;
using Peft.Tests.Training;
using Peft.Training;
using TorchSharp;
using static Peft.Tests.Training.TokenSevenTask;
using static TorchSharp.torch;

namespace Peft.Tests.Reliability;

/// <summary>NaN and infinity never reach the weights: training stops naming the step, or skips it when asked.</summary>
public class NonFiniteTrainingTests
{
    private static List<(long[] Ids, long Label)> Data(int count) => TokenSevenTask.Data(count, seed: 5);

    /// <summary>Every tensor of every safetensors file under <paramref name="directory"/> is finite; returns how many adapters there are.</summary>
    private static int AssertAllFinite(string directory)
    {
        var files = Directory.GetFiles(directory, "*.safetensors", SearchOption.AllDirectories);
        foreach (var file in files)
        {
            foreach (var (name, tensor) in SafeTensors.Load(file))
            {
                if (tensor.is_floating_point()) Assert.True(tensor.isfinite().all().item<bool>(), $"{file}: {name} is not finite");
            }
        }
        return files.Count(f => Path.GetFileName(f) == "adapter_model.safetensors");
    }

    [Fact]
    public void AHugeLearningRateStopsAtTheFirstNonFiniteStepAndSavesNothingNonFinite()
    {
        using var scratch = new ScratchDirectory();
        var options = new TrainingOptions
        {
            Epochs = 3, BatchSize = 4, LearningRate = 1e6, WarmupRatio = 0, OutputDirectory = scratch.Path,
            SaveStrategy = IntervalStrategy.Steps, SaveSteps = 1,
        };
        var model = FreshLora();
        var error = Assert.Throws<NonFiniteTrainingException>(() => new Trainer().Train(Trainables.Adapter(model), Data(32), null, Collate, options));

        Assert.InRange(error.Step, 2, 24);
        Assert.Contains($"step {error.Step} ", error.Message, StringComparison.Ordinal);
        Assert.Contains("not finite", error.Message, StringComparison.Ordinal);
        // The steps before it were saved (one checkpoint each), and none holds a NaN or infinity; nor does the model in memory.
        Assert.Equal(error.Step - 1, Directory.GetDirectories(scratch.Path, "checkpoint-step-*").Length);
        Assert.Equal(error.Step - 1, AssertAllFinite(scratch.Path));
        Assert.All(model.TrainableParameters(), p => Assert.True(p.Parameter.isfinite().all().item<bool>(), p.Name));
    }

    [Fact]
    public void SkippingNonFiniteStepsFinishesWithFiniteWeightsAndCountsTheSkippedSteps()
    {
        using var scratch = new ScratchDirectory();
        var options = new TrainingOptions
        {
            Epochs = 2, BatchSize = 4, LearningRate = 1e6, WarmupRatio = 0, OutputDirectory = scratch.Path, SkipNonFiniteSteps = true,
        };
        var model = FreshLora();
        var result = new Trainer().Train(Trainables.Adapter(model), Data(32), null, Collate, options);

        Assert.Equal(16, result.StepLosses.Count);
        Assert.NotEmpty(result.SkippedSteps);
        Assert.All(result.SkippedSteps, step => Assert.False(double.IsFinite(result.StepLosses[step - 1])));
        Assert.All(Enumerable.Range(1, 16).Except(result.SkippedSteps), step => Assert.True(double.IsFinite(result.StepLosses[step - 1])));
        Assert.Equal(2, AssertAllFinite(scratch.Path));
        Assert.All(model.TrainableParameters(), p => Assert.True(p.Parameter.isfinite().all().item<bool>(), p.Name));
    }

    [Fact]
    public void AnInfiniteGradientBehindAFiniteLossIsCaughtAndNamesTheParameter()
    {
        var module = new SqrtAtZero();
        var trainable = new ModuleTrainable(module);
        var examples = Enumerable.Range(0, 4).ToList();
        ModelInputs Inputs(IReadOnlyList<int> batch) => new() { InputIds = torch.zeros(batch.Count, 1, torch.int64) };

        var error = Assert.Throws<NonFiniteTrainingException>(() => new Trainer().Train(trainable, examples, null, Inputs,
            new TrainingOptions { Epochs = 1, BatchSize = 2, MaxGradNorm = 0 }));
        Assert.Equal(1, error.Step);
        Assert.Contains("gradient of weight", error.Message, StringComparison.Ordinal);
        Assert.Equal(0f, module.Weight.item<float>());

        var skipped = new Trainer().Train(trainable, examples, null, Inputs, new TrainingOptions { Epochs = 1, BatchSize = 2, SkipNonFiniteSteps = true });
        Assert.Equal([1, 2], skipped.SkippedSteps);
        Assert.Equal(0f, module.Weight.item<float>());
    }

    /// <summary>loss = sqrt(w) at w = 0: the loss is 0, its gradient infinite.</summary>
    private sealed class SqrtAtZero : nn.Module<ModelInputs, ModelOutputs>
    {
        public SqrtAtZero() : base(nameof(SqrtAtZero))
        {
            weight = nn.Parameter(torch.zeros(1));
            RegisterComponents();
        }

#pragma warning disable IDE1006 // The field's name is the parameter's name.
        private readonly TorchSharp.Modules.Parameter weight;
#pragma warning restore IDE1006

        public TorchSharp.Modules.Parameter Weight => weight;

        public override ModelOutputs forward(ModelInputs input) => new() { Logits = weight, Loss = weight.sqrt().sum() };
    }

    private sealed class ModuleTrainable(SqrtAtZero module) : ITrainable
    {
        public nn.Module<ModelInputs, ModelOutputs> Module => module;

        public IReadOnlyList<TorchSharp.Modules.Parameter> TrainableParameters => [module.Weight];

        public void SaveCheckpoint(string directory) => throw new InvalidOperationException("not saved in this test");

        public void LoadCheckpoint(string directory) => throw new InvalidOperationException("not saved in this test");
    }
}
