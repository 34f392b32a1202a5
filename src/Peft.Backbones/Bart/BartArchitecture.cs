using System.Text.Json;
using Peft.Modeling;
using Peft.Plugins;

namespace Peft.Backbones.Bart;

/// <summary>The BART architecture plugin (<c>model_type: "bart"</c>).</summary>
public sealed class BartArchitecture : IArchitecture
{
    /// <inheritdoc />
    public string ModelType => "bart";

    /// <inheritdoc />
    public IReadOnlyList<TaskType> SupportedTasks { get; } = [TaskType.Seq2SeqLM];

    /// <inheritdoc />
    public IReadOnlyList<string> DefaultLoraTargets { get; } = ["q_proj", "v_proj"];

    /// <inheritdoc />
    public ModelConfig ParseConfig(JsonElement json, string source) => ModelConfigs.Parse<BartConfig>(json, source);

    /// <inheritdoc />
    public PreTrainedModel Build(ModelConfig config, TaskType task)
    {
        var bart = (BartConfig)config;
        if (task == TaskType.Seq2SeqLM) return new BartForConditionalGeneration(bart);
        throw new NotSupportedException($"BART has no head for {task}; supported: {string.Join(", ", SupportedTasks)}.");
    }
}
