using System.Text.Json;
using Peft.Backbones.Shared;
using Peft.Modeling;
using Peft.Plugins;

namespace Peft.Backbones.Gpt2;

/// <summary>The GPT-2 architecture plugin (<c>model_type: "gpt2"</c>).</summary>
[DefaultTargets("LORA", "c_attn")]
[DefaultTargets("IA3", "c_attn", "mlp.c_proj")]
[DefaultTargets("IA3_FEEDFORWARD", "mlp.c_proj")]
[DefaultTargets("ADALORA", "c_attn")]
[DefaultTargets("LN_TUNING", "ln_1", "ln_2", "ln_f")]
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
        if (task == TaskType.CausalLM) return new DecoderForCausalLM(gpt2, HeadFacts(gpt2), new Gpt2Model(gpt2));
        if (task == TaskType.SequenceClassification) return new DecoderForSequenceClassification(gpt2, HeadFacts(gpt2), new Gpt2Model(gpt2));
        if (task == TaskType.TokenClassification) return new DecoderForTokenClassification(gpt2, HeadFacts(gpt2), new Gpt2Model(gpt2));
        throw new NotSupportedException($"GPT-2 has no head for {task}; supported: {string.Join(", ", SupportedTasks)}.");
    }

    /// <summary>What the shared decoder heads need to know of Gpt2.</summary>
    public static DecoderHeadFacts HeadFacts(Gpt2Config c) =>
        new()
        {
            StackName = "transformer",
            LayerCount = c.NLayer,
            PromptLayout = new(c.NLayer, c.NHead, c.HeadDim, c.NEmbd),
            HeadInputSize = c.NEmbd,
            TiedSource = "transformer.wte.weight",
            ModelName = "GPT-2",
            ClassPrefix = "GPT2",
            CausalLMClassName = "GPT2LMHeadModel",
            TokenClassifierDropout = c.ClassifierDropout ?? 0.1,
        };
}
