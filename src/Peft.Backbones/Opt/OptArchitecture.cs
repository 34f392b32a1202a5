using System.Text.Json;
using Peft.Backbones.Shared;
using Peft.Modeling;
using Peft.Plugins;

namespace Peft.Backbones.Opt;

/// <summary>The OPT architecture plugin (<c>model_type: "opt"</c>).</summary>
[DefaultTargets("LORA", "q_proj", "v_proj")]
[DefaultTargets("IA3", "q_proj", "k_proj", "fc2")]
[DefaultTargets("IA3_FEEDFORWARD", "fc2")]
[DefaultTargets("ADALORA", "q_proj", "k_proj", "v_proj", "out_proj", "fc1", "fc2")]
public sealed partial class OptArchitecture : IArchitecture
{
    /// <inheritdoc />
    public string ModelType => "opt";

    /// <inheritdoc />
    public IReadOnlyList<TaskType> SupportedTasks { get; } = [TaskType.CausalLM, TaskType.SequenceClassification];


    /// <inheritdoc />
    public ModelConfig ParseConfig(JsonElement json, string source) => ModelConfigs.Parse<OptConfig>(json, source);

    /// <inheritdoc />
    public PreTrainedModel Build(ModelConfig config, TaskType task)
    {
        var opt = (OptConfig)config;
        if (task == TaskType.CausalLM) return new DecoderForCausalLM(opt, HeadFacts(opt), new OptModel(opt));
        if (task == TaskType.SequenceClassification) return new DecoderForSequenceClassification(opt, HeadFacts(opt), new OptModel(opt));
        throw new NotSupportedException($"OPT has no head for {task}; supported: {string.Join(", ", SupportedTasks)}.");
    }

    /// <summary>What the shared decoder heads need to know of Opt.</summary>
    public static DecoderHeadFacts HeadFacts(OptConfig c) =>
        new()
        {
            StackName = "model",
            LayerCount = c.NumHiddenLayers,
            PromptLayout = new(c.NumHiddenLayers, c.NumAttentionHeads, c.HeadDim, c.WordEmbedProjDim),
            HeadInputSize = c.WordEmbedProjDim,
            TiedSource = "model.decoder.embed_tokens.weight",
            ModelName = "OPT",
            ClassPrefix = "OPT",
        };
}
