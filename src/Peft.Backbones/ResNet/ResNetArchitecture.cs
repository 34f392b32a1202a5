using System.Text.Json;
using Peft.Modeling;
using Peft.Plugins;

namespace Peft.Backbones.ResNet;

/// <summary>The ResNet architecture plugin (<c>model_type: "resnet"</c>).</summary>
/// <remarks>
/// The reference declares no default LoRA targets for ResNet (its table has no "resnet" entry), so
/// target_modules must be given, as there: <c>convolution</c> names every convolution (stem, layers, shortcuts).
/// </remarks>
public sealed class ResNetArchitecture : IArchitecture
{
    /// <inheritdoc />
    public string ModelType => "resnet";

    /// <inheritdoc />
    public IReadOnlyList<TaskType> SupportedTasks { get; } = [TaskType.ImageClassification, TaskType.FeatureExtraction];

    /// <inheritdoc />
    public ModelConfig ParseConfig(JsonElement json, string source) => ModelConfigs.Parse<ResNetConfig>(json, source);

    /// <inheritdoc />
    public PreTrainedModel Build(ModelConfig config, TaskType task)
    {
        var resnet = (ResNetConfig)config;
        if (task == TaskType.ImageClassification) return new ResNetForImageClassification(resnet);
        if (task == TaskType.FeatureExtraction) return new ResNetForFeatureExtraction(resnet);
        throw new NotSupportedException($"ResNet has no head for {task}; supported: {string.Join(", ", SupportedTasks)}.");
    }
}
