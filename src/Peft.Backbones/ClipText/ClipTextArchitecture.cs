using System.Text.Json;
using Peft.Modeling;
using Peft.Plugins;

namespace Peft.Backbones.ClipText;

/// <summary>The plugin for CLIP's text encoder (<c>model_type: "clip_text_model"</c>), a feature extractor.</summary>
[DefaultTargets("LORA", "q_proj", "v_proj")]
public sealed partial class ClipTextArchitecture : IArchitecture
{
    /// <inheritdoc />
    public string ModelType => "clip_text_model";

    /// <inheritdoc />
    public IReadOnlyList<TaskType> SupportedTasks { get; } = [TaskType.FeatureExtraction];

    /// <inheritdoc />
    public ModelConfig ParseConfig(JsonElement json, string source) => ModelConfigs.Parse<ClipTextConfig>(json, source);

    /// <inheritdoc />
    public PreTrainedModel Build(ModelConfig config, TaskType task)
    {
        // The reference's adapters for CLIPTextModel carry no task type: they are feature extraction.
        if (task == TaskType.FeatureExtraction) return new ClipTextModel((ClipTextConfig)config);
        throw new NotSupportedException($"CLIP's text encoder has no head for {task}; supported: {string.Join(", ", SupportedTasks)}.");
    }
}
