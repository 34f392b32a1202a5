using System.Text.Json;
using Peft.Modeling;
using Peft.Plugins;

namespace Peft.Backbones.Swin;

/// <summary>The Swin Transformer architecture plugin (<c>model_type: "swin"</c>).</summary>
/// <remarks>The reference declares no default LoRA targets for Swin: target_modules must be given, as there.</remarks>
public sealed class SwinArchitecture : IArchitecture
{
    /// <summary>transformers 4's names against the run-time names the module tree uses (transformers 5).</summary>
    public static ModuleRenames ClassicNames { get; } = new(
        ("attention.self.query", "attention.q_proj"),
        ("attention.self.key", "attention.k_proj"),
        ("attention.self.value", "attention.v_proj"),
        ("attention.self.relative_position_bias_table", "attention.relative_position_bias.relative_position_bias_table"),
        ("attention.output.dense", "attention.o_proj"),
        ("intermediate.dense", "mlp.fc1"),
        ("output.dense", "mlp.fc2"));

    /// <inheritdoc />
    public string ModelType => "swin";

    /// <inheritdoc />
    public IReadOnlyList<TaskType> SupportedTasks { get; } = [TaskType.ImageClassification];

    /// <inheritdoc />
    public ModelConfig ParseConfig(JsonElement json, string source) => ModelConfigs.Parse<SwinConfig>(json, source);

    /// <inheritdoc />
    public PreTrainedModel Build(ModelConfig config, TaskType task)
    {
        if (task == TaskType.ImageClassification) return new SwinForImageClassification((SwinConfig)config);
        throw new NotSupportedException($"Swin has no head for {task}; supported: {string.Join(", ", SupportedTasks)}.");
    }
}
