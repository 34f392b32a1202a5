using System.Text.Json.Serialization;
using Peft.Tuners;

namespace Peft.Methods.Vera;

/// <summary>VeRA's adapter_config.json (the reference's <c>VeraConfig</c>).</summary>
public sealed record VeraConfig : TunerConfig, ILayerSelection
{
    /// <summary>Only layers with these indices get an adapter.</summary>
    [JsonPropertyName("layers_to_transform")]
    public IReadOnlyList<int>? LayersToTransform { get; init; }

    /// <summary>The name of the layer list that <see cref="LayersToTransform"/> indexes (e.g. "h", "layers").</summary>
    [JsonPropertyName("layers_pattern")]
    public string? LayersPattern { get; init; }

    /// <summary>The <c>peft_type</c> "VERA".</summary>
    public static readonly PeftType Type = new("VERA");

    /// <inheritdoc />
    public override PeftType PeftType => Type;

    /// <summary>Rank of the shared random projections.</summary>
    [JsonPropertyName("r")]
    public int R { get; init; } = 256;

    /// <inheritdoc />
    /// <remarks>Every adapted layer saves <c>vera_lambda_d</c> of length r, with or without the projections.</remarks>
    protected override IEnumerable<ConfigSize> DeclaredSizes() => [new ConfigSize("r", R, SizeBound.TensorDimension)];

    /// <summary>Seed of the generator the frozen projections vera_A and vera_B are drawn from.</summary>
    [JsonPropertyName("projection_prng_key")]
    public long ProjectionPrngKey { get; init; }

    /// <summary>Save vera_A and vera_B in the adapter file (true), or rebuild them from <see cref="ProjectionPrngKey"/> on load.</summary>
    [JsonPropertyName("save_projection")]
    public bool SaveProjection { get; init; } = true;

    /// <summary>Dropout on the adapter branch's input.</summary>
    [JsonPropertyName("vera_dropout")]
    public double VeraDropout { get; init; }

    /// <summary>The value every entry of vera_lambda_d starts at (with <see cref="InitWeights"/>).</summary>
    [JsonPropertyName("d_initial")]
    public double DInitial { get; init; } = 0.1;

    /// <summary>True when the base layer stores its weight (in, out), as GPT-2's Conv1D does; as in the reference, the layer's kind decides (true for Conv1D, false for Linear).</summary>
    [JsonPropertyName("fan_in_fan_out")]
    public bool FanInFanOut { get; init; }

    /// <summary>Which biases train: only "none" is supported.</summary>
    [JsonPropertyName("bias")]
    public string Bias { get; init; } = "none";

    /// <summary>True: vera_lambda_b zeros and vera_lambda_d = d_initial, so the adapter starts as the identity; false: random (for tests).</summary>
    [JsonPropertyName("init_weights")]
    public bool InitWeights { get; init; } = true;

    /// <summary>The projections built for this attachment (set by <see cref="VeraMethod"/> before its layers are made).</summary>
    [JsonIgnore]
    internal VeraProjections? Projections { get; init; }

    /// <inheritdoc />
    public override void Validate()
    {
        base.Validate();
        ILayerSelection.Check(this, TargetModules);
        if (R <= 0) throw new PeftConfigException($"`r` should be a positive integer value but the value passed is {R}.");
        if (Bias != "none") throw new PeftConfigException($"`bias` = \"{Bias}\" is not supported; use \"none\".");
        if (VeraDropout is < 0 or >= 1) throw new PeftConfigException($"`vera_dropout` must be in [0, 1), got {VeraDropout}.");
    }
}
