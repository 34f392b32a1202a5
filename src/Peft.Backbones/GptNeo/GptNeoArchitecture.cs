using System.Text.Json;
using Peft.Backbones.Shared;
using Peft.Modeling;
using Peft.Plugins;

namespace Peft.Backbones.GptNeo;

/// <summary>The GPT-Neo architecture plugin (<c>model_type: "gpt_neo"</c>).</summary>
[DefaultTargets("LORA", "q_proj", "v_proj")]
[DefaultTargets("IA3", "q_proj", "v_proj", "c_proj")]
[DefaultTargets("IA3_FEEDFORWARD", "c_proj")]
[DefaultTargets("ADALORA", "q_proj", "v_proj")]
public sealed partial class GptNeoArchitecture : IArchitecture
{
    /// <inheritdoc />
    public string ModelType => "gpt_neo";

    /// <inheritdoc />
    public IReadOnlyList<TaskType> SupportedTasks { get; } =
        [TaskType.CausalLM, TaskType.SequenceClassification, TaskType.TokenClassification];


    /// <inheritdoc />
    public ModelConfig ParseConfig(JsonElement json, string source) => ModelConfigs.Parse<GptNeoConfig>(json, source);

    /// <inheritdoc />
    public PreTrainedModel Build(ModelConfig config, TaskType task)
    {
        var neo = (GptNeoConfig)config;
        if (task == TaskType.CausalLM) return new DecoderForCausalLM(neo, HeadFacts(neo), new GptNeoModel(neo));
        if (task == TaskType.SequenceClassification) return new DecoderForSequenceClassification(neo, HeadFacts(neo), new GptNeoModel(neo));
        if (task == TaskType.TokenClassification) return new DecoderForTokenClassification(neo, HeadFacts(neo), new GptNeoModel(neo));
        throw new NotSupportedException($"GPT-Neo has no head for {task}; supported: {string.Join(", ", SupportedTasks)}.");
    }

    /// <summary>What the shared decoder heads need to know of GptNeo.</summary>
    public static DecoderHeadFacts HeadFacts(GptNeoConfig c) =>
        new()
        {
            StackName = "transformer",
            LayerCount = c.NumLayers,
            PromptLayout = new(c.NumLayers, c.NumHeads, c.HeadDim, c.HiddenSize),
            HeadInputSize = c.HiddenSize,
            TiedSource = "transformer.wte.weight",
            ModelName = "GPT-Neo",
            ClassPrefix = "GPTNeo",
            TokenClassifierDropout = c.ClassifierDropout,
        };
}
