using System.Text.Json;
using Peft.Modeling;
using Peft.Plugins;

namespace Peft.Backbones.Deberta;

/// <summary>The DeBERTa architecture plugin (<c>model_type: "deberta"</c>).</summary>
[DefaultTargets("LORA", "in_proj")]
[DefaultTargets("IA3", "in_proj", "output.dense")]
[DefaultTargets("IA3_FEEDFORWARD", "output.dense")]
[DefaultTargets("ADALORA", "in_proj")]
public sealed partial class DebertaArchitecture : IArchitecture
{
    /// <inheritdoc />
    public string ModelType => "deberta";

    /// <inheritdoc />
    public IReadOnlyList<TaskType> SupportedTasks { get; } = [TaskType.SequenceClassification, TaskType.TokenClassification];

    /// <inheritdoc />
    public ModelConfig ParseConfig(JsonElement json, string source) => ModelConfigs.Parse<DebertaConfig>(json, source);

    /// <inheritdoc />
    public PreTrainedModel Build(ModelConfig config, TaskType task)
    {
        var deberta = (DebertaConfig)config;
        if (task == TaskType.SequenceClassification) return new DebertaForSequenceClassification(deberta);
        if (task == TaskType.TokenClassification) return new DebertaForTokenClassification(deberta);
        throw new NotSupportedException($"DeBERTa has no head for {task}; supported: {string.Join(", ", SupportedTasks)}.");
    }
}
