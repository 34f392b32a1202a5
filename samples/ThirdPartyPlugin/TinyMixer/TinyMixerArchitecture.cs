using System.Text.Json;
using Peft;
using Peft.Modeling;
using Peft.Plugins;

namespace ThirdPartyPlugin.TinyMixer;

/// <summary>
/// The tiny-mixer architecture plugin (<c>model_type: "tiny-mixer"</c>). Register it with
/// <c>services.AddPeft(p =&gt; p.AddBackbone&lt;TinyMixerArchitecture&gt;())</c>.
/// </summary>
/// <remarks>
/// <c>[DefaultTargets]</c> makes the source generator write <see cref="IArchitecture.DefaultTargets"/>:
/// per method, the modules it targets when a config names none (LoRA here; SCALE_SHIFT reads LoRA's table).
/// </remarks>
[DefaultTargets("LORA", "mix_proj", "fc_in", "fc_out")]
public sealed partial class TinyMixerArchitecture : IArchitecture
{
    /// <summary>The <c>model_type</c> this plugin owns.</summary>
    public const string Type = "tiny-mixer";

    /// <inheritdoc />
    public string ModelType => Type;

    /// <inheritdoc />
    public IReadOnlyList<TaskType> SupportedTasks { get; } = [TaskType.SequenceClassification];

    /// <inheritdoc />
    public ModelConfig ParseConfig(JsonElement json, string source) => ModelConfigs.Parse<TinyMixerConfig>(json, source);

    /// <inheritdoc />
    public PreTrainedModel Build(ModelConfig config, TaskType task)
    {
        if (config is not TinyMixerConfig mixer)
        {
            throw new ArgumentException($"tiny-mixer builds from a {nameof(TinyMixerConfig)}, not a {config.GetType().Name}.", nameof(config));
        }
        if (task == TaskType.SequenceClassification) return new TinyMixerForSequenceClassification(mixer);
        throw new NotSupportedException($"tiny-mixer has no head for {task}; supported: {string.Join(", ", SupportedTasks)}.");
    }
}
