using System.Text.Json;
using Peft.Modeling;
using Peft.Plugins;

namespace Peft.Backbones.T5;

/// <summary>
/// The code <see cref="T5Architecture"/> and <see cref="MT5Architecture"/> share; each declares its
/// own model_type and default targets (the reference's tables differ for IA3 and AdaLoRA).
/// </summary>
public abstract class T5FamilyArchitecture
{
    /// <inheritdoc cref="IArchitecture.ModelType" />
    public abstract string ModelType { get; }

    /// <inheritdoc cref="IArchitecture.SupportedTasks" />
    public IReadOnlyList<TaskType> SupportedTasks { get; } = [TaskType.Seq2SeqLM];


    /// <inheritdoc cref="IArchitecture.ParseConfig" />
    public ModelConfig ParseConfig(JsonElement json, string source) => ModelConfigs.Parse<T5Config>(json, source);

    /// <inheritdoc cref="IArchitecture.Build" />
    public PreTrainedModel Build(ModelConfig config, TaskType task)
    {
        var t5 = (T5Config)config;
        if (task == TaskType.Seq2SeqLM) return new T5ForConditionalGeneration(t5);
        throw new NotSupportedException($"{ModelType} has no head for {task}; supported: {string.Join(", ", SupportedTasks)}.");
    }
}

/// <summary>The T5 architecture plugin (<c>model_type: "t5"</c>).</summary>
[DefaultTargets("LORA", "q", "v")]
[DefaultTargets("IA3", "k", "v", "wo")]
[DefaultTargets("IA3_FEEDFORWARD", "wo")]
[DefaultTargets("ADALORA", "q", "k", "v", "o", "wi", "wo")]
[DefaultTargets("LN_TUNING", "layer_norm", "final_layer_norm")]
public sealed partial class T5Architecture : T5FamilyArchitecture, IArchitecture
{
    /// <inheritdoc />
    public override string ModelType => "t5";
}

/// <summary>
/// The mT5 architecture plugin (<c>model_type: "mt5"</c>): T5's code with mT5's defaults (gated-GELU
/// feed-forward) and no rescaling of the decoder output before the head.
/// </summary>
[DefaultTargets("LORA", "q", "v")]
[DefaultTargets("IA3", "k", "v", "wi_1")]
[DefaultTargets("IA3_FEEDFORWARD")]
[DefaultTargets("ADALORA", "q", "k", "v", "o", "wi_0", "wi_1", "wo")]
[DefaultTargets("LN_TUNING", "layer_norm", "final_layer_norm")]
public sealed partial class MT5Architecture : T5FamilyArchitecture, IArchitecture
{
    /// <inheritdoc />
    public override string ModelType => "mt5";
}
