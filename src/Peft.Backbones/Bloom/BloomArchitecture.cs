using System.Text.Json;
using Peft.Modeling;
using Peft.Plugins;

namespace Peft.Backbones.Bloom;

/// <summary>The BLOOM architecture plugin (<c>model_type: "bloom"</c>).</summary>
public sealed class BloomArchitecture : IArchitecture
{
    /// <inheritdoc />
    public string ModelType => "bloom";

    /// <inheritdoc />
    public IReadOnlyList<TaskType> SupportedTasks { get; } =
        [TaskType.CausalLM, TaskType.SequenceClassification, TaskType.TokenClassification];

    /// <inheritdoc />
    public IReadOnlyList<string> DefaultLoraTargets { get; } = ["query_key_value"];

    /// <inheritdoc />
    public ModelConfig ParseConfig(JsonElement json, string source)
    {
        var config = ModelConfigs.Parse<BloomConfig>(json, source);
        if (config.NHead <= 0 || config.HiddenSize % config.NHead != 0)
        {
            throw new ModelConfigException($"{source} at key 'n_head': hidden_size {config.HiddenSize} is not divisible by n_head {config.NHead}.");
        }
        return config;
    }

    /// <inheritdoc />
    public PreTrainedModel Build(ModelConfig config, TaskType task)
    {
        var bloom = (BloomConfig)config;
        if (task == TaskType.CausalLM) return new BloomForCausalLM(bloom);
        if (task == TaskType.SequenceClassification) return new BloomForSequenceClassification(bloom);
        if (task == TaskType.TokenClassification) return new BloomForTokenClassification(bloom);
        throw new NotSupportedException($"BLOOM has no head for {task}; supported: {string.Join(", ", SupportedTasks)}.");
    }
}
