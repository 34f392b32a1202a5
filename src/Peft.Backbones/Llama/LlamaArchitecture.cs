using System.Text.Json;
using Peft.Backbones.Shared;
using Peft.Modeling;
using Peft.Plugins;

namespace Peft.Backbones.Llama;

/// <summary>The Llama architecture plugin (<c>model_type: "llama"</c>).</summary>
[DefaultTargets("LORA", "q_proj", "v_proj")]
[DefaultTargets("IA3", "k_proj", "v_proj", "down_proj")]
[DefaultTargets("IA3_FEEDFORWARD", "down_proj")]
[DefaultTargets("ADALORA", "q_proj", "v_proj")]
[DefaultTargets("LN_TUNING", "input_layernorm", "post_attention_layernorm", "norm")]
public sealed partial class LlamaArchitecture : IArchitecture
{
    /// <inheritdoc />
    public string ModelType => "llama";

    /// <inheritdoc />
    public IReadOnlyList<TaskType> SupportedTasks { get; } =
        [TaskType.CausalLM, TaskType.SequenceClassification, TaskType.TokenClassification];

    /// <inheritdoc />
    public ModelConfig ParseConfig(JsonElement json, string source) => ModelConfigs.Parse<LlamaConfig>(json, source);

    /// <inheritdoc />
    public PreTrainedModel Build(ModelConfig config, TaskType task)
    {
        var llama = (LlamaConfig)config;
        if (task == TaskType.CausalLM) return new DecoderForCausalLM(llama, HeadFacts(llama), new LlamaModel(llama));
        if (task == TaskType.SequenceClassification) return new DecoderForSequenceClassification(llama, HeadFacts(llama), new LlamaModel(llama));
        if (task == TaskType.TokenClassification) return new DecoderForTokenScoring(llama, HeadFacts(llama), new LlamaModel(llama));
        throw new NotSupportedException($"Llama has no head for {task}; supported: {string.Join(", ", SupportedTasks)}.");
    }

    /// <summary>What the shared decoder heads need to know of Llama.</summary>
    public static DecoderHeadFacts HeadFacts(LlamaConfig c) =>
        new()
        {
            StackName = "model",
            LayerCount = c.NumHiddenLayers,
            PromptLayout = new(c.NumHiddenLayers, c.NumKeyValueHeads, c.HeadDim, c.HiddenSize),
            HeadInputSize = c.HiddenSize,
            TiedSource = "model.embed_tokens.weight",
            ModelName = "Llama",
            ClassPrefix = "Llama",
            TokenClassifierDropout = c.ClassifierDropout ?? 0.1,
        };
}
