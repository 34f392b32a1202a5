using Microsoft.Extensions.DependencyInjection;
using Peft;
using Peft.Methods.Lora;
using Peft.Modeling;
using Peft.Training;
using ThirdPartyPlugin.ScaleShift;
using ThirdPartyPlugin.TinyMixer;
using TorchSharp;
using Xunit.Abstractions;

namespace ThirdPartyPlugin.Tests;

/// <summary>
/// The third party's architecture trained with the built-in LoRA and with its own SCALE_SHIFT,
/// through the library's Trainer; the saved adapter reloads into a fresh model with the same outputs.
/// </summary>
public sealed class TrainingTests(ITestOutputHelper output)
{
    private static readonly TrainingOptions Options = new() { Epochs = 12, BatchSize = 128, LearningRate = 1e-2, WarmupRatio = 0 };

    // A per-channel scale and shift moves less per step than a rank-4 update with a trained head.
    private static TrainingOptions OptionsFor(string method) => method == "SCALE_SHIFT" ? Options with { LearningRate = 5e-2 } : Options;

    public static TheoryData<string> Methods => ["LORA", "SCALE_SHIFT"];

    private static PeftConfig ConfigFor(string method) => method switch
    {
        // target_modules left out: the architecture's [DefaultTargets("LORA", ...)] apply.
        "LORA" => new LoraConfig { R = 4, LoraAlpha = 8, TaskType = TaskType.SequenceClassification, ModulesToSave = ["classifier"] },
        // No modules_to_save: the scales and shifts alone have to lower the loss.
        "SCALE_SHIFT" => new ScaleShiftConfig { TaskType = TaskType.SequenceClassification },
        _ => throw new ArgumentOutOfRangeException(nameof(method)),
    };

    [Theory]
    [MemberData(nameof(Methods))]
    public void TrainsSavesAndReloadsWithTheSameOutputs(string method)
    {
        using var provider = Plugins.Provider();
        var models = provider.GetRequiredService<PeftModels>();
        using var checkpoint = new TinyMixerCheckpoint(models);
        using var saved = new ScratchDirectory();

        var model = models.LoadPretrained(checkpoint.Path, TaskType.SequenceClassification);
        Assert.IsType<TinyMixerForSequenceClassification>(model);
        torch.manual_seed(1);
        var peft = models.GetPeftModel(model, ConfigFor(method));
        var (trainable, all) = peft.GetNbTrainableParameters();
        Assert.InRange(trainable, 1, all / 2);

        // One batch of the whole set per step: the loss curve is the optimiser's, not the sampling's.
        var train = MajorityTask.Data(128, seed: 2);
        var evaluation = MajorityTask.Data(64, seed: 3);
        var before = Trainer.Evaluate(peft, train, MajorityTask.Collate, batchSize: 128);
        var result = new Trainer().Train(Trainables.Adapter(peft), train, evaluation, MajorityTask.Collate, OptionsFor(method));
        var after = Trainer.Evaluate(peft, train, MajorityTask.Collate, batchSize: 128);
        output.WriteLine($"{method}: step losses {string.Join(", ", result.StepLosses.Select(l => l.ToString("F4")))}; "
            + $"training set {before.Loss:F4} ({before.Accuracy:P0}) → {after.Loss:F4} ({after.Accuracy:P0}); held out {result.Evaluations[^1].Loss:F4} ({result.Evaluations[^1].Accuracy:P0})");

        Assert.Equal(Options.Epochs, result.StepLosses.Count);
        Assert.Equal(Options.Epochs, result.Evaluations.Count);
        Assert.True(result.StepLosses[^1] < result.StepLosses[0] - 0.02, $"{method}: the training loss did not fall");
        Assert.True(after.Loss < before.Loss - 0.02, $"{method}: the loss on the training set did not fall");

        peft.SavePretrained(saved.Path);
        var config = File.ReadAllText(Path.Combine(saved.Path, "adapter_config.json"));
        Assert.Contains($"\"peft_type\": \"{method}\"", config);
        Assert.Contains("\"fc_out\"", config);   // the default targets, written out as applied

        var fresh = models.LoadPretrained(checkpoint.Path, TaskType.SequenceClassification);
        var reloaded = models.FromPretrained(fresh, saved.Path);
        Assert.Equal(method, reloaded.PeftConfig.PeftType.Name);
        using var scope = torch.NewDisposeScope();
        var inputs = MajorityTask.Collate(evaluation) with { Labels = null };
        peft.eval();
        var expected = peft.call(inputs).Logits;
        var actual = reloaded.call(inputs).Logits;
        Assert.True(MajorityTask.MaxDiff(expected, actual) <= 1e-6, $"reloaded logits differ by {MajorityTask.MaxDiff(expected, actual)}");
        using (reloaded.DisableAdapter())
        {
            Assert.True(MajorityTask.MaxDiff(expected, reloaded.call(inputs).Logits) > 1e-4, "the trained adapter changed nothing");
        }
    }
}
