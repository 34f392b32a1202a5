using System.Text.Json;
using Peft.Modeling;
using Peft.Plugins;

namespace Peft.Backbones.T5;

/// <summary>The T5 architecture plugin (<c>model_type: "t5"</c>); <see cref="MT5Architecture"/> shares its code.</summary>
public class T5Architecture : IArchitecture
{
    /// <inheritdoc />
    public virtual string ModelType => "t5";

    /// <inheritdoc />
    public IReadOnlyList<TaskType> SupportedTasks { get; } = [TaskType.Seq2SeqLM];

    /// <inheritdoc />
    public IReadOnlyList<string> DefaultLoraTargets { get; } = ["q", "v"];

    /// <inheritdoc />
    public ModelConfig ParseConfig(JsonElement json, string source) => ModelConfigs.Parse<T5Config>(json, source);

    /// <inheritdoc />
    public PreTrainedModel Build(ModelConfig config, TaskType task)
    {
        var t5 = (T5Config)config;
        if (task == TaskType.Seq2SeqLM) return new T5ForConditionalGeneration(t5);
        throw new NotSupportedException($"{ModelType} has no head for {task}; supported: {string.Join(", ", SupportedTasks)}.");
    }
}

/// <summary>
/// The mT5 architecture plugin (<c>model_type: "mt5"</c>): T5's code with mT5's defaults (gated-GELU
/// feed-forward) and no rescaling of the decoder output before the head.
/// </summary>
public sealed class MT5Architecture : T5Architecture
{
    /// <inheritdoc />
    public override string ModelType => "mt5";
}
