using Peft.Tuners;

namespace Peft.Methods.LnTuning;

/// <summary>LN tuning's adapter_config.json (the reference's <c>LNTuningConfig</c>): target_modules, exclude_modules, modules_to_save.</summary>
public sealed record LnTuningConfig : TunerConfig
{
    /// <summary>The method's <c>peft_type</c>.</summary>
    public static readonly PeftType Type = new("LN_TUNING");

    /// <inheritdoc />
    public override PeftType PeftType => Type;
}
