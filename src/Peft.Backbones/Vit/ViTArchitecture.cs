using System.Text.Json;
using Peft.Modeling;
using Peft.Plugins;

namespace Peft.Backbones.Vit;

/// <summary>The ViT architecture plugin (<c>model_type: "vit"</c>).</summary>
/// <remarks>
/// The reference declares no default LoRA targets for ViT (its table has no "vit" entry), so
/// target_modules must be given, as there.
/// </remarks>
public sealed class ViTArchitecture : IArchitecture
{
    /// <summary>
    /// transformers 4's names (base checkpoints, adapters saved then) against the run-time names the
    /// module tree uses (transformers 5, and the adapters saved under it).
    /// </summary>
    public static ModuleRenames ClassicNames { get; } = new(
        ("encoder.layer.*", "layers.*"),
        ("attention.attention.query", "attention.q_proj"),
        ("attention.attention.key", "attention.k_proj"),
        ("attention.attention.value", "attention.v_proj"),
        ("attention.output.dense", "attention.o_proj"),
        ("intermediate.dense", "mlp.fc1"),
        ("output.dense", "mlp.fc2"));

    /// <inheritdoc />
    public string ModelType => "vit";

    /// <inheritdoc />
    public IReadOnlyList<TaskType> SupportedTasks { get; } = [TaskType.ImageClassification, TaskType.FeatureExtraction];

    /// <inheritdoc />
    public ModelConfig ParseConfig(JsonElement json, string source) => ModelConfigs.Parse<ViTConfig>(json, source);

    /// <inheritdoc />
    public PreTrainedModel Build(ModelConfig config, TaskType task)
    {
        var vit = (ViTConfig)config;
        if (task == TaskType.ImageClassification) return new ViTForImageClassification(vit);
        if (task == TaskType.FeatureExtraction) return new ViTForFeatureExtraction(vit);
        throw new NotSupportedException($"ViT has no head for {task}; supported: {string.Join(", ", SupportedTasks)}.");
    }
}
