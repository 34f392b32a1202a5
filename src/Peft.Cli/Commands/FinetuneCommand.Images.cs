using Peft.Cli.Data;
using Peft.Cli.Hosting;
using Peft.Cli.Reporting;
using Peft.Methods.Lora;
using Peft.Modeling;
using Peft.Tuners;
using Spectre.Console;

namespace Peft.Cli.Commands;

/// <summary><c>peft finetune --task image-classification</c>: the image counterpart of the default job.</summary>
public sealed partial class FinetuneCommand
{
    /// <summary>
    /// LoRA, a linear probe and full fine-tuning of an image classifier (default: the ImageNet ResNet-18 from
    /// Microsoft.ML.DnnImageFeaturizer.ResNet18) on a seeded Fashion-MNIST subset, resized to --image-size and
    /// normalised as the model's preprocessor_config.json says.
    /// </summary>
    private int RunImageClassification(FinetuneOptions settings, CancellationToken cancellationToken)
    {
        var modelDirectory = settings.Model is { Length: > 0 } given ? given : DefaultModel.EnsureResNet(console);
        var normalization = ImageNormalization.FromModel(modelDirectory);
        var size = settings.ImageSize ?? FinetuneOptions.DefaultImageSize;
        var data = ImageClassificationData.FromFashionMnist(settings.ExamplesPerLabel, settings.TestFraction, settings.Seed);
        var collate = ImageClassificationData.Collator(normalization, size);

        console.MarkupLineInterpolated($"[bold]Model[/] {modelDirectory}");
        console.MarkupLineInterpolated($"[bold]Data[/]  {data.Source}: {data.Train.Count} training and {data.Test.Count} test images at {size}×{size} px, labels {string.Join(", ", data.Labels)}");
        Directory.CreateDirectory(settings.Output);

        var results = new List<MethodResult>();
        foreach (var method in settings.MethodList)
        {
            if (cancellationToken.IsCancellationRequested) break;
            var result = RunMethod(method, settings, modelDirectory, data.Labels,
                () => LoadClassifier(modelDirectory, data.Labels, settings, TaskType.ImageClassification),
                data.Train, data.Test, collate, nextToken: false, cancellationToken);
            results.Add(result);
            if (result.Training.Cancelled) break;
        }
        return Report(results, settings,
            $"{Path.GetFileName(modelDirectory.TrimEnd('/'))} on {data.Source} ({size}×{size} px), {data.Train.Count} train / {data.Test.Count} test images, {settings.Epochs} epochs");
    }

    /// <summary>
    /// LoRA for an image classifier: the given targets, else every convolution (<c>convolution</c>: ResNet's stem,
    /// layers and shortcuts); the head and the BatchNorms are trained in full and saved with the adapter
    /// (modules_to_save), as PEFT advises for models with BatchNorm, whose running statistics move while training.
    /// No task_type: the reference has none for image classification (its vision adapters carry null).
    /// </summary>
    private static LoraConfig ImageLoraFor(FinetuneOptions settings, string modelDirectory) => new()
    {
        R = settings.Rank,
        LoraAlpha = settings.Alpha,
        LoraDropout = settings.Dropout,
        TargetModules = TargetModuleOption.Parse(settings.TargetModules) ?? TargetModules.FromNames(["convolution"]),
        ModulesToSave = ["classifier", "normalization"],
        BaseModelNameOrPath = Path.GetFullPath(modelDirectory),
    };
}
