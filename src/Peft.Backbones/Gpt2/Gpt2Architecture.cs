using System.Text.Json;
using Peft.Modeling;
using Peft.Plugins;

namespace Peft.Backbones.Gpt2;

/// <summary>The GPT-2 architecture plugin (<c>model_type: "gpt2"</c>).</summary>
[DefaultLoraTargets("c_attn")]
public sealed partial class Gpt2Architecture : IArchitecture
{
    /// <inheritdoc />
    public string ModelType => "gpt2";

    /// <inheritdoc />
    public IReadOnlyList<TaskType> SupportedTasks { get; } =
        [TaskType.CausalLM, TaskType.SequenceClassification, TaskType.TokenClassification];

    /// <inheritdoc />
    public ModelConfig ParseConfig(JsonElement json, string source) => ModelConfigs.Parse<Gpt2Config>(json, source);

    /// <inheritdoc />
    public PreTrainedModel Build(ModelConfig config, TaskType task)
    {
        var gpt2 = (Gpt2Config)config;
        if (task == TaskType.CausalLM) return new Gpt2LMHeadModel(gpt2);
        if (task == TaskType.SequenceClassification) return new Gpt2ForSequenceClassification(gpt2);
        if (task == TaskType.TokenClassification) return new Gpt2ForTokenClassification(gpt2);
        throw new NotSupportedException($"GPT-2 has no head for {task}; supported: {string.Join(", ", SupportedTasks)}.");
    }
}
