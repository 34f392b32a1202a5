using System.Text.Json;
using Peft.Backbones.Shared;
using Peft.Modeling;
using Peft.Plugins;

namespace Peft.Backbones.GptNeoX;

/// <summary>The GPT-NeoX architecture plugin (<c>model_type: "gpt_neox"</c>).</summary>
[DefaultTargets("LORA", "query_key_value")]
[DefaultTargets("IA3", "query_key_value", "dense_4h_to_h")]
[DefaultTargets("IA3_FEEDFORWARD", "dense_4h_to_h")]
[DefaultTargets("ADALORA", "query_key_value")]
public sealed partial class GptNeoXArchitecture : IArchitecture
{
    /// <inheritdoc />
    public string ModelType => "gpt_neox";

    /// <inheritdoc />
    public IReadOnlyList<TaskType> SupportedTasks { get; } =
        [TaskType.CausalLM, TaskType.SequenceClassification, TaskType.TokenClassification];

    /// <inheritdoc />
    public ModelConfig ParseConfig(JsonElement json, string source) => ModelConfigs.Parse<GptNeoXConfig>(json, source);

    /// <inheritdoc />
    public PreTrainedModel Build(ModelConfig config, TaskType task)
    {
        var neox = (GptNeoXConfig)config;
        if (task == TaskType.CausalLM) return new DecoderForCausalLM(neox, HeadFacts(neox), new GptNeoXModel(neox));
        if (task == TaskType.SequenceClassification) return new DecoderForSequenceClassification(neox, HeadFacts(neox), new GptNeoXModel(neox));
        if (task == TaskType.TokenClassification) return new DecoderForTokenClassification(neox, HeadFacts(neox), new GptNeoXModel(neox));
        throw new NotSupportedException($"GPT-NeoX has no head for {task}; supported: {string.Join(", ", SupportedTasks)}.");
    }

    /// <summary>What the shared decoder heads need to know of GptNeoX.</summary>
    public static DecoderHeadFacts HeadFacts(GptNeoXConfig c) =>
        new()
        {
            StackName = "gpt_neox",
            LayerCount = c.NumHiddenLayers,
            PromptLayout = new(c.NumHiddenLayers, c.NumAttentionHeads, c.HeadDim, c.HiddenSize),
            HeadInputSize = c.HiddenSize,
            TiedSource = "gpt_neox.embed_in.weight",
            ModelName = "GPT-NeoX",
            ClassPrefix = "GPTNeoX",
            LMHeadName = "embed_out",
            HeadModuleNames = ["embed_out", "lm_head", "score", "classifier"],
            TokenClassifierDropout = c.ClassifierDropout,
        };
}
