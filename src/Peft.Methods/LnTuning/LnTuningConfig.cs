using Peft.Tuners;

namespace Peft.Methods.LnTuning;

/// <summary>LN tuning's adapter_config.json (the reference's <c>LNTuningConfig</c>): target_modules, exclude_modules, modules_to_save.</summary>
public sealed record LnTuningConfig : TunerConfig
{
    /// <summary>The method's <c>peft_type</c>.</summary>
    public static readonly PeftType Type = new("LN_TUNING");

    /// <inheritdoc />
    public override PeftType PeftType => Type;

    /// <inheritdoc />
    public override void Validate()
    {
        base.Validate();
        // The reference's LNTuningConfig has no layer selection; refuse rather than ignore it.
        if (LayersToTransform is not null) throw new PeftConfigException("`layers_to_transform` is not an LN tuning option; select the norm layers with `target_modules`.");
        if (LayersPattern is not null) throw new PeftConfigException("`layers_pattern` is not an LN tuning option; select the norm layers with `target_modules`.");
    }
}
