using System.Text.Json;
using Peft.Backbones.Shared;
using Peft.Modeling;
using Peft.Plugins;

namespace Peft.Backbones.Bloom;

/// <summary>The BLOOM architecture plugin (<c>model_type: "bloom"</c>).</summary>
[DefaultTargets("LORA", "query_key_value")]
[DefaultTargets("IA3", "query_key_value", "mlp.dense_4h_to_h")]
[DefaultTargets("IA3_FEEDFORWARD", "mlp.dense_4h_to_h")]
[DefaultTargets("ADALORA", "query_key_value")]
[DefaultTargets("LN_TUNING", "input_layernorm", "post_attention_layernorm", "ln_f")]
public sealed partial class BloomArchitecture : IArchitecture
{
    /// <inheritdoc />
    public string ModelType => "bloom";

    /// <inheritdoc />
    public IReadOnlyList<TaskType> SupportedTasks { get; } =
        [TaskType.CausalLM, TaskType.SequenceClassification, TaskType.TokenClassification];


    /// <inheritdoc />
    public ModelConfig ParseConfig(JsonElement json, string source) => ModelConfigs.Parse<BloomConfig>(json, source);

    /// <inheritdoc />
    public PreTrainedModel Build(ModelConfig config, TaskType task)
    {
        var bloom = (BloomConfig)config;
        if (task == TaskType.CausalLM) return new DecoderForCausalLM(bloom, HeadFacts(bloom), new BloomModel(bloom));
        if (task == TaskType.SequenceClassification) return new DecoderForSequenceClassification(bloom, HeadFacts(bloom), new BloomModel(bloom));
        if (task == TaskType.TokenClassification) return new DecoderForTokenClassification(bloom, HeadFacts(bloom), new BloomModel(bloom));
        throw new NotSupportedException($"BLOOM has no head for {task}; supported: {string.Join(", ", SupportedTasks)}.");
    }

    /// <summary>What the shared decoder heads need to know of Bloom.</summary>
    public static DecoderHeadFacts HeadFacts(BloomConfig c) =>
        new()
        {
            StackName = "transformer",
            LayerCount = c.NLayer,
            PromptLayout = new(c.NLayer, c.NHead, c.HeadDim, c.HiddenSize),
            HeadInputSize = c.HiddenSize,
            TiedSource = "transformer.word_embeddings.weight",
            ModelName = "BLOOM",
            ClassPrefix = "Bloom",
            TokenClassifierDropout = c.ClassifierDropout ?? c.HiddenDropout,
        };
}
