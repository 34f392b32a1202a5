using System.Text.Json;
using Peft.Modeling;
using Peft.Plugins;

namespace Peft.Backbones.Segformer;

/// <summary>The SegFormer architecture plugin (<c>model_type: "segformer"</c>).</summary>
/// <remarks>The reference declares no default LoRA targets for SegFormer: target_modules must be given, as there.</remarks>
public sealed class SegformerArchitecture : IArchitecture
{
    /// <summary>transformers 4's names against the run-time names the module tree uses (transformers 5).</summary>
    public static ModuleRenames ClassicNames { get; } = new(
        ("encoder.patch_embeddings.*", "stages.*.patch_embeddings"),
        ("encoder.block.*.*", "stages.*.blocks.*"),
        ("encoder.layer_norm.*", "stages.*.layer_norm"),
        ("attention.self.query", "attention.q_proj"),
        ("attention.self.key", "attention.k_proj"),
        ("attention.self.value", "attention.v_proj"),
        ("attention.self.sr", "attention.sequence_reduction.sequence_reduction"),
        ("attention.self.layer_norm", "attention.sequence_reduction.layer_norm"),
        ("attention.output.dense", "attention.o_proj"),
        ("layer_norm_1", "layernorm_before"),
        ("layer_norm_2", "layernorm_after"),
        ("mlp.dense1", "mlp.fc1"),
        ("mlp.dense2", "mlp.fc2"),
        ("decode_head.linear_c", "decode_head.linear_projections"));

    /// <inheritdoc />
    public string ModelType => "segformer";

    /// <inheritdoc />
    public IReadOnlyList<TaskType> SupportedTasks { get; } = [TaskType.SemanticSegmentation, TaskType.ImageClassification];

    /// <inheritdoc />
    public ModelConfig ParseConfig(JsonElement json, string source) => ModelConfigs.Parse<SegformerConfig>(json, source);

    /// <inheritdoc />
    public PreTrainedModel Build(ModelConfig config, TaskType task)
    {
        var segformer = (SegformerConfig)config;
        if (task == TaskType.SemanticSegmentation) return new SegformerForSemanticSegmentation(segformer);
        if (task == TaskType.ImageClassification) return new SegformerForImageClassification(segformer);
        throw new NotSupportedException($"SegFormer has no head for {task}; supported: {string.Join(", ", SupportedTasks)}.");
    }
}
