using System.Text.Json;
using Peft.Backbones.Deberta;
using Peft.Modeling;
using Peft.Plugins;

namespace Peft.Backbones.DebertaV2;

/// <summary>The DeBERTa-v2 architecture plugin (<c>model_type: "deberta-v2"</c>; DeBERTa-v3 checkpoints use it too).</summary>
[DefaultTargets("LORA", "query_proj", "value_proj")]
[DefaultTargets("IA3", "key_proj", "value_proj", "output.dense")]
[DefaultTargets("IA3_FEEDFORWARD", "output.dense")]
[DefaultTargets("ADALORA", "query_proj", "key_proj", "value_proj", "dense")]
public sealed partial class DebertaV2Architecture : IArchitecture
{
    /// <inheritdoc />
    public string ModelType => "deberta-v2";

    /// <inheritdoc />
    public IReadOnlyList<TaskType> SupportedTasks { get; } = [TaskType.SequenceClassification, TaskType.TokenClassification];

    /// <inheritdoc />
    public ModelConfig ParseConfig(JsonElement json, string source) => ModelConfigs.Parse<DebertaV2Config>(json, source);

    /// <inheritdoc />
    public PreTrainedModel Build(ModelConfig config, TaskType task)
    {
        var deberta = (DebertaV2Config)config;
        if (task == TaskType.SequenceClassification) return new DebertaForSequenceClassification("DebertaV2ForSequenceClassification", deberta, new DebertaV2Model(deberta));
        if (task == TaskType.TokenClassification) return new DebertaForTokenClassification("DebertaV2ForTokenClassification", deberta, new DebertaV2Model(deberta));
        throw new NotSupportedException($"DeBERTa-v2 has no head for {task}; supported: {string.Join(", ", SupportedTasks)}.");
    }
}
