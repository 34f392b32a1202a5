using System.Text.Json;
using System.Text.Json.Serialization;
using System.Text.RegularExpressions;
using Peft.Tuners;

namespace Peft.Methods.Lora;

/// <summary>LoRA's adapter_config.json (the reference's <c>LoraConfig</c>).</summary>
public sealed record LoraConfig : TunerConfig
{
    /// <inheritdoc />
    public override PeftType PeftType => PeftType.Lora;

    /// <summary>Rank of the update.</summary>
    [JsonPropertyName("r")]
    public int R { get; init; } = 8;

    /// <summary>Scale numerator: the update is multiplied by lora_alpha / r (or / sqrt(r) with rsLoRA).</summary>
    [JsonPropertyName("lora_alpha")]
    public double LoraAlpha { get; init; } = 8;

    /// <summary>Dropout on the LoRA branch's input.</summary>
    [JsonPropertyName("lora_dropout")]
    public double LoraDropout { get; init; }

    /// <summary>True when the base layer stores its weight (in, out), as GPT-2's Conv1D does.</summary>
    [JsonPropertyName("fan_in_fan_out")]
    public bool FanInFanOut { get; init; }

    /// <summary>Which biases train: "none" (only "none" is supported).</summary>
    [JsonPropertyName("bias")]
    public string Bias { get; init; } = "none";

    /// <summary>Scale by lora_alpha / sqrt(r) (rank-stabilised LoRA).</summary>
    [JsonPropertyName("use_rslora")]
    public bool UseRsLora { get; init; }

    /// <summary>true (A Kaiming-uniform, B zeros), false (both random), or "gaussian" (A normal with std 1/r).</summary>
    [JsonPropertyName("init_lora_weights")]
    public JsonElement? InitLoraWeights { get; init; } = JsonSerializer.SerializeToElement(true);

    /// <summary>Per-module ranks, keyed by a module-name pattern.</summary>
    [JsonPropertyName("rank_pattern")]
    public IReadOnlyDictionary<string, int>? RankPattern { get; init; } = new Dictionary<string, int>();

    /// <summary>Per-module alphas, keyed by a module-name pattern.</summary>
    [JsonPropertyName("alpha_pattern")]
    public IReadOnlyDictionary<string, double>? AlphaPattern { get; init; } = new Dictionary<string, double>();

    /// <summary>Weight-decomposed LoRA (DoRA): a trainable magnitude per output feature rescales the adapted weight's rows.</summary>
    [JsonPropertyName("use_dora")]
    public bool UseDora { get; init; }

    /// <summary>A trainable bias on lora_B.</summary>
    [JsonPropertyName("lora_bias")]
    public bool LoraBias { get; init; }

    /// <summary>How the adapter weights start.</summary>
    [JsonIgnore]
    public LoraInit Init => InitLoraWeights switch
    {
        null or { ValueKind: JsonValueKind.Null or JsonValueKind.True } => LoraInit.Default,
        { ValueKind: JsonValueKind.False } => LoraInit.Random,
        { ValueKind: JsonValueKind.String } s when s.GetString() == "gaussian" => LoraInit.Gaussian,
        var other => throw new PeftConfigException($"init_lora_weights {other} is not supported; use true, false or \"gaussian\"."),
    };

    /// <summary>The rank for the module at <paramref name="path"/>.</summary>
    public int RankFor(string path) => Lookup(RankPattern, path) ?? R;

    /// <summary>The alpha for the module at <paramref name="path"/>.</summary>
    public double AlphaFor(string path) => Lookup(AlphaPattern, path) ?? LoraAlpha;

    /// <summary>The factor the update is multiplied by.</summary>
    public double ScalingFor(string path)
    {
        var rank = RankFor(path);
        return AlphaFor(path) / (UseRsLora ? Math.Sqrt(rank) : rank);
    }

    private static T? Lookup<T>(IReadOnlyDictionary<string, T>? patterns, string path) where T : struct
    {
        if (patterns is null) return null;
        foreach (var (pattern, value) in patterns)
        {
            if (Regex.IsMatch(path, $"(^|\\.){pattern}$", RegexOptions.CultureInvariant)) return value;
        }
        return null;
    }

    /// <inheritdoc />
    public override void Validate()
    {
        base.Validate();
        if (R <= 0) throw new PeftConfigException($"`r` should be a positive integer value but the value passed is {R}.");
        if (UseDora && LoraBias) throw new PeftConfigException("The argument `lora_bias`=true is not supported for DoRA (`use_dora`=true).");
        if (Bias != "none") throw new PeftConfigException($"`bias` = \"{Bias}\" is not supported yet; use \"none\".");
        if (LoraDropout is < 0 or >= 1) throw new PeftConfigException($"`lora_dropout` must be in [0, 1), got {LoraDropout}.");
        _ = Init;
    }
}

/// <summary>How LoRA weights are initialised.</summary>
public enum LoraInit
{
    /// <summary>A Kaiming-uniform (a = √5), B zeros; embeddings: A zeros, B normal. The update starts at zero.</summary>
    Default,
    /// <summary>A normal with std 1/r, B zeros.</summary>
    Gaussian,
    /// <summary>Both random (the update does not start at zero; for tests).</summary>
    Random,
}
