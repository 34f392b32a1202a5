using System.Text.Json;
using Peft.Backbones.Shared;
using Peft.Modeling;
using Peft.Plugins;

namespace Peft.Backbones.GptJ;

/// <summary>The GPT-J architecture plugin (<c>model_type: "gptj"</c>).</summary>
[DefaultTargets("LORA", "q_proj", "v_proj")]
[DefaultTargets("IA3", "q_proj", "v_proj", "fc_out")]
[DefaultTargets("IA3_FEEDFORWARD", "fc_out")]
[DefaultTargets("ADALORA", "q_proj", "v_proj")]
[DefaultTargets("LN_TUNING", "ln_1", "ln_f")]
public sealed partial class GptJArchitecture : IArchitecture
{
    /// <inheritdoc />
    public string ModelType => "gptj";

    /// <inheritdoc />
    public IReadOnlyList<TaskType> SupportedTasks { get; } = [TaskType.CausalLM, TaskType.SequenceClassification];

    /// <inheritdoc />
    public ModelConfig ParseConfig(JsonElement json, string source) => ModelConfigs.Parse<GptJConfig>(json, source);

    /// <inheritdoc />
    public PreTrainedModel Build(ModelConfig config, TaskType task)
    {
        var gptj = (GptJConfig)config;
        if (task == TaskType.CausalLM) return new DecoderForCausalLM(gptj, HeadFacts(gptj), new GptJModel(gptj));
        if (task == TaskType.SequenceClassification) return new DecoderForSequenceClassification(gptj, HeadFacts(gptj), new GptJModel(gptj));
        throw new NotSupportedException($"GPT-J has no head for {task}; supported: {string.Join(", ", SupportedTasks)}.");
    }

    /// <summary>What the shared decoder heads need to know of GptJ.</summary>
    public static DecoderHeadFacts HeadFacts(GptJConfig c) =>
        new()
        {
            StackName = "transformer",
            LayerCount = c.NLayer,
            PromptLayout = new(c.NLayer, c.NHead, c.HeadDim, c.NEmbd),
            HeadInputSize = c.NEmbd,
            TiedSource = "transformer.wte.weight",
            ModelName = "GPT-J",
            ClassPrefix = "GPTJ",
            LMHeadBias = true,
            LogitsToFloat32 = true,
        };
}
