using System.Text.Json;
using Peft.Modeling;
using Peft.Plugins;

namespace Peft.Backbones.Bart;

/// <summary>The BART architecture plugin (<c>model_type: "bart"</c>).</summary>
[DefaultTargets("LORA", "q_proj", "v_proj")]
[DefaultTargets("IA3", "q_proj", "v_proj", "fc2")]
[DefaultTargets("IA3_FEEDFORWARD", "fc2")]
[DefaultTargets("ADALORA", "q_proj", "k_proj", "v_proj", "out_proj", "fc1", "fc2")]
[DefaultTargets("LN_TUNING", "self_attn_layer_norm", "encoder_attn_layer_norm", "final_layer_norm")]
public sealed partial class BartArchitecture : IArchitecture
{
    /// <inheritdoc />
    public string ModelType => "bart";

    /// <inheritdoc />
    public IReadOnlyList<TaskType> SupportedTasks { get; } = [TaskType.Seq2SeqLM];


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
