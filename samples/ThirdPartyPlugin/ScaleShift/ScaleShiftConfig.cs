using System.Text.Json.Serialization;
using Peft;
using Peft.Tuners;

namespace ThirdPartyPlugin.ScaleShift;

/// <summary>
/// The adapter_config.json of SCALE_SHIFT. <c>target_modules</c>, <c>exclude_modules</c>,
/// <c>modules_to_save</c>, <c>layers_to_transform</c> and <c>layers_pattern</c> come from
/// <see cref="TunerConfig"/>; <c>task_type</c> and the rest from <see cref="PeftConfig"/>.
/// </summary>
public sealed record ScaleShiftConfig : TunerConfig
{
    /// <summary>The <c>peft_type</c> of this method: a string, so a plugin needs no change to Peft to add one.</summary>
    public static readonly PeftType Type = new("SCALE_SHIFT");

    /// <inheritdoc />
    public override PeftType PeftType => Type;

    /// <summary>
    /// True (the default): every scale starts at 1 and every shift at 0, so the adapted model starts
    /// as the base model. False: both start randomly near that (for tests of merging and loading).
    /// </summary>
    [JsonPropertyName("init_weights")]
    public bool InitWeights { get; init; } = true;
}
