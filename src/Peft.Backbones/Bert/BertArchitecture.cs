using System.Text.Json;
using Peft.Modeling;
using Peft.Plugins;

namespace Peft.Backbones.Bert;

/// <summary>The BERT architecture plugin (<c>model_type: "bert"</c>).</summary>
[DefaultTargets("LORA", "query", "value")]
[DefaultTargets("IA3", "key", "value", "output.dense")]
[DefaultTargets("IA3_FEEDFORWARD", "output.dense")]
[DefaultTargets("ADALORA", "query", "value")]
public sealed partial class BertArchitecture : IArchitecture
{
    /// <inheritdoc />
    public string ModelType => "bert";

    /// <inheritdoc />
    public IReadOnlyList<TaskType> SupportedTasks { get; } =
        [TaskType.SequenceClassification, TaskType.TokenClassification, TaskType.FeatureExtraction];

    /// <inheritdoc />
    public ModelConfig ParseConfig(JsonElement json, string source) => ModelConfigs.Parse<BertConfig>(json, source);

    /// <inheritdoc />
    public PreTrainedModel Build(ModelConfig config, TaskType task)
    {
        var bert = (BertConfig)config;
        if (task == TaskType.SequenceClassification) return new BertForSequenceClassification(bert);
        if (task == TaskType.TokenClassification) return new BertForTokenClassification(bert);
        if (task == TaskType.FeatureExtraction) return new BertForFeatureExtraction(bert);
        throw new NotSupportedException($"BERT has no head for {task}; supported: {string.Join(", ", SupportedTasks)}.");
    }
}
