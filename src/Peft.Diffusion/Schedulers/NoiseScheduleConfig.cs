using System.Text.Json;
using System.Text.Json.Serialization;

namespace Peft.Diffusion.Schedulers;

/// <summary>
/// diffusers' <c>scheduler/scheduler_config.json</c> keys shared by DDPMScheduler and DDIMScheduler (defaults as diffusers'
/// constructors). Stable Diffusion 1.x ships <c>scaled_linear</c>, 0.00085 → 0.012, <c>steps_offset: 1</c>, <c>clip_sample: false</c>.
/// </summary>
public sealed record NoiseScheduleConfig
{
    /// <summary>Timesteps of the training schedule.</summary>
    [JsonPropertyName("num_train_timesteps")]
    public int NumTrainTimesteps { get; init; } = 1000;

    /// <summary>β at the first timestep.</summary>
    [JsonPropertyName("beta_start")]
    public double BetaStart { get; init; } = 0.0001;

    /// <summary>β at the last timestep.</summary>
    [JsonPropertyName("beta_end")]
    public double BetaEnd { get; init; } = 0.02;

    /// <summary><c>linear</c> or <c>scaled_linear</c> (linear in √β, Stable Diffusion's).</summary>
    [JsonPropertyName("beta_schedule")]
    public string BetaSchedule { get; init; } = "linear";

    /// <summary>What the model predicts: <c>epsilon</c> (the noise), <c>v_prediction</c> or <c>sample</c>.</summary>
    [JsonPropertyName("prediction_type")]
    public string PredictionType { get; init; } = "epsilon";

    /// <summary>Added to every inference timestep of the <c>leading</c> spacing.</summary>
    [JsonPropertyName("steps_offset")]
    public int StepsOffset { get; init; }

    /// <summary>DDIM: the ᾱ before the first timestep is 1 (else ᾱ₀).</summary>
    [JsonPropertyName("set_alpha_to_one")]
    public bool SetAlphaToOne { get; init; } = true;

    /// <summary>Clamp the predicted clean sample to ±<see cref="ClipSampleRange"/> (diffusers' DDIM default is true; Stable Diffusion sets false).</summary>
    [JsonPropertyName("clip_sample")]
    public bool ClipSample { get; init; } = true;

    /// <summary>The clamp of <see cref="ClipSample"/>.</summary>
    [JsonPropertyName("clip_sample_range")]
    public double ClipSampleRange { get; init; } = 1.0;

    /// <summary>How inference timesteps are spread: <c>leading</c>, <c>trailing</c> or <c>linspace</c>.</summary>
    [JsonPropertyName("timestep_spacing")]
    public string TimestepSpacing { get; init; } = "leading";

    /// <summary>Keys not modelled (checked by <see cref="Validate"/> for options that would change the schedule).</summary>
    [JsonExtensionData]
    public Dictionary<string, JsonElement>? ExtensionData { get; init; }

    /// <summary>Reads a scheduler_config.json (or the same keys in any JSON object) and validates it.</summary>
    /// <exception cref="ArgumentException">A value is not supported, naming its key.</exception>
    public static NoiseScheduleConfig Read(string path)
    {
        var config = JsonSerializer.Deserialize<NoiseScheduleConfig>(File.ReadAllText(path)) ?? throw new ArgumentException($"{path}: empty.");
        config.Validate(path);
        return config;
    }

    /// <summary>Refuses values this library does not implement, naming the key.</summary>
    /// <param name="source">Where the config came from, for messages.</param>
    /// <exception cref="ArgumentException">A value is not supported.</exception>
    public void Validate(string source = "scheduler config")
    {
        if (BetaSchedule is not ("linear" or "scaled_linear"))
        {
            throw new ArgumentException($"{source} at key 'beta_schedule': '{BetaSchedule}' is not supported (linear, scaled_linear).");
        }
        if (PredictionType is not ("epsilon" or "v_prediction" or "sample"))
        {
            throw new ArgumentException($"{source} at key 'prediction_type': '{PredictionType}' is not supported (epsilon, v_prediction, sample).");
        }
        if (TimestepSpacing is not ("leading" or "trailing" or "linspace"))
        {
            throw new ArgumentException($"{source} at key 'timestep_spacing': '{TimestepSpacing}' is not supported (leading, trailing, linspace).");
        }
        if (NumTrainTimesteps < 1) throw new ArgumentException($"{source} at key 'num_train_timesteps': {NumTrainTimesteps} is below 1.");
        if (BetaStart <= 0 || BetaEnd >= 1 || BetaStart > BetaEnd)
        {
            throw new ArgumentException($"{source}: beta_start {BetaStart} and beta_end {BetaEnd} must satisfy 0 < beta_start ≤ beta_end < 1.");
        }
        foreach (var key in new[] { "trained_betas", "thresholding", "rescale_betas_zero_snr" })
        {
            if (ExtensionData?.TryGetValue(key, out var value) == true && value.ValueKind is not (JsonValueKind.Null or JsonValueKind.False))
            {
                throw new ArgumentException($"{source} at key '{key}': {value.GetRawText()} is not supported.");
            }
        }
    }
}
