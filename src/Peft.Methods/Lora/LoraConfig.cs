using System.Text.Json.Serialization;
using System.Text.RegularExpressions;
using Peft.Tuners;

namespace Peft.Methods.Lora;

/// <summary>LoRA's adapter_config.json (the reference's <c>LoraConfig</c>).</summary>
public sealed record LoraConfig : TunerConfig, ILayerSelection
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

    /// <summary>true (A Kaiming-uniform, B zeros), false (both random), or "gaussian" (A normal with std 1/r); null reads as true.</summary>
    [JsonPropertyName("init_lora_weights")]
    public LoraInitWeights? InitLoraWeights { get; init; } = LoraInitWeights.Default;

    /// <summary>Per-module ranks, keyed by a module-name pattern.</summary>
    [JsonPropertyName("rank_pattern")]
    public IReadOnlyDictionary<string, int>? RankPattern { get; init; } = new Dictionary<string, int>();

    /// <summary>Per-module alphas, keyed by a module-name pattern.</summary>
    [JsonPropertyName("alpha_pattern")]
    public IReadOnlyDictionary<string, double>? AlphaPattern { get; init; } = new Dictionary<string, double>();

    /// <summary>Weight-decomposed LoRA (DoRA): a trainable magnitude per output feature rescales the adapted weight's rows.</summary>
    [JsonPropertyName("use_dora")]
    public bool UseDora { get; init; }

    /// <summary>Only layers with these indices get an adapter.</summary>
    [JsonPropertyName("layers_to_transform")]
    public IReadOnlyList<int>? LayersToTransform { get; init; }

    /// <summary>The name of the layer list that <see cref="LayersToTransform"/> indexes (e.g. "h", "layers").</summary>
    [JsonPropertyName("layers_pattern")]
    public string? LayersPattern { get; init; }

    /// <summary>A trainable bias on lora_B.</summary>
    [JsonPropertyName("lora_bias")]
    public bool LoraBias { get; init; }

    /// <summary>
    /// How the adapter weights start. Only creating an adapter needs it: an adapter loaded from a
    /// checkpoint (<see cref="PeftConfig.WeightsFromCheckpoint"/>) takes its weights from the file,
    /// so any value the reference writes loads.
    /// </summary>
    /// <exception cref="PeftConfigException">The value names an initialisation this library does not implement.</exception>
    [JsonIgnore]
    public LoraInit Init => WeightsFromCheckpoint ? LoraInit.Default : InitLoraWeights?.Json switch
    {
        null or "null" or "true" => LoraInit.Default,
        "false" => LoraInit.Random,
        _ when InitName is { } name => ParseInit(name),
        var other => throw UnsupportedInit(other),
    };

    /// <summary>The string form of <see cref="InitLoraWeights"/> (<c>"pissa_niter_4"</c>), or null for true/false.</summary>
    private string? InitName => InitLoraWeights?.Json is ['"', ..] json ? System.Text.Json.JsonSerializer.Deserialize<string>(json) : null;

    /// <summary>The power iterations of <c>"pissa_niter_N"</c> (N); null for the other initialisations.</summary>
    [JsonIgnore]
    public int? PissaIterations => Init == LoraInit.PissaLowRank ? int.Parse(InitName!["pissa_niter_".Length..], System.Globalization.CultureInfo.InvariantCulture) : null;

    private LoraInit ParseInit(string value)
    {
        // Case as the reference compares: "gaussian" and "olora" case-insensitively, the rest exactly.
        if (value.Equals("gaussian", StringComparison.OrdinalIgnoreCase)) return LoraInit.Gaussian;
        if (value.Equals("olora", StringComparison.OrdinalIgnoreCase)) return LoraInit.Olora;
        if (value == "pissa") return LoraInit.Pissa;
        if (value == "orthogonal") return LoraInit.Orthogonal;
        if (value.StartsWith("pissa_niter_", StringComparison.Ordinal)
            && int.TryParse(value["pissa_niter_".Length..], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var n) && n >= 0)
        {
            return LoraInit.PissaLowRank;
        }
        throw UnsupportedInit($"\"{value}\"");
    }

    private static PeftConfigException UnsupportedInit(string value) => new(
        $"`init_lora_weights` = {value} is not implemented for creating an adapter here; use true, false, \"gaussian\", \"pissa\", \"pissa_niter_<N>\", \"olora\" or \"orthogonal\" " +
        "(an adapter saved with any value loads: its weights come from the file).");

    /// <inheritdoc />
    protected override IReadOnlyDictionary<string, string> UnimplementedFields => Unimplemented;

    /// <inheritdoc />
    protected override IReadOnlySet<string> HarmlessFields => Harmless;

    /// <summary>The reference LoraConfig's fields (PEFT 0.21 and later) that change the math and are not implemented here.</summary>
    private static readonly Dictionary<string, string> Unimplemented = new(StringComparer.Ordinal)
    {
        ["trainable_token_indices"] = "trains selected rows of the token embedding",
        ["layer_replication"] = "repeats base layers to grow the model",
        ["target_parameters"] = "puts LoRA on bare parameters (MoE experts)",
        ["alora_invocation_tokens"] = "activated LoRA: the adapter applies only after the invocation tokens",
        ["use_qalora"] = "quantization-aware LoRA pools the input",
        ["use_bdlora"] = "block-diagonal LoRA factors",
        ["arrow_config"] = "Arrow routing between several LoRA experts",
        ["ensure_weight_tying"] = "ties the adapters of a tied embedding and output head",
        ["megatron_config"] = "Megatron tensor-parallel layers",
        ["loftq_config"] = "LoftQ quantized initialisation",
        ["eva_config"] = "EVA data-driven initialisation",
        ["corda_config"] = "CorDA initialisation",
        ["lora_ga_config"] = "LoRA-GA gradient-based initialisation",
        ["velora_config"] = "VeLoRA memory-efficient training",
        ["monteclora_config"] = "MonteCLoRA variational LoRA",
        ["kasa_config"] = "KaSA singular-value adaptation",
    };

    /// <summary>Reference fields that cannot change results here: settings of the refused features, loading hints.</summary>
    private static readonly HashSet<string> Harmless = new(StringComparer.Ordinal) { "megatron_core", "qalora_group_size", "runtime_config" };

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

    /// <summary>Each key is a regular expression matched at injection: a malformed one is refused here, by key.</summary>
    private static void CheckPatterns(string key, IEnumerable<string>? patterns)
    {
        foreach (var pattern in patterns ?? [])
        {
            try
            {
                _ = new Regex($"(^|\\.){pattern}$", RegexOptions.CultureInvariant);
            }
            catch (RegexParseException e)
            {
                throw new PeftConfigException($"`{key}` key `{pattern}` is not a valid regular expression ({e.Message}).");
            }
        }
    }

    /// <inheritdoc />
    /// <remarks>With a rank_pattern, <c>r</c> may name no saved module, so only a config without one bounds it.</remarks>
    protected override IEnumerable<ConfigSize> DeclaredSizes() =>
        RankPattern is { Count: > 0 } ? [] : [new ConfigSize("r", R, SizeBound.TensorDimension)];

    /// <inheritdoc />
    public override void Validate()
    {
        base.Validate();
        ILayerSelection.Check(this, TargetModules);
        if (R <= 0) throw new PeftConfigException($"`r` should be a positive integer value but the value passed is {R}.");
        CheckPatterns("rank_pattern", RankPattern?.Keys);
        CheckPatterns("alpha_pattern", AlphaPattern?.Keys);
        if (UseDora && LoraBias) throw new PeftConfigException("The argument `lora_bias`=true is not supported for DoRA (`use_dora`=true).");
        if (Bias != "none") throw new PeftConfigException($"`bias` = \"{Bias}\" is not supported yet; use \"none\".");
        if (LoraDropout is < 0 or >= 1) throw new PeftConfigException($"`lora_dropout` must be in [0, 1), got {LoraDropout}.");
        if (Init == LoraInit.Orthogonal && (R % 2 != 0 || (RankPattern?.Values.Any(r => r % 2 != 0) ?? false)))
        {
            throw new PeftConfigException($"`init_lora_weights` = \"orthogonal\" requires an even rank, got `r` = {R}{(RankPattern is { Count: > 0 } ? " / rank_pattern " + string.Join(", ", RankPattern.Values) : "")}.");
        }
    }
}

/// <summary>How LoRA weights are initialised (the reference's <c>init_lora_weights</c>).</summary>
public enum LoraInit
{
    /// <summary><c>true</c>: A Kaiming-uniform (a = √5), B zeros; embeddings: A zeros, B normal. The update starts at zero.</summary>
    Default,
    /// <summary><c>"gaussian"</c>: A normal with std 1/r, B zeros.</summary>
    Gaussian,
    /// <summary><c>false</c>: both as a fresh nn.Linear (the update does not start at zero; for tests).</summary>
    Random,
    /// <summary><c>"pissa"</c>: A and B from the top-r singular triplets of the base weight, which keeps the residual.</summary>
    Pissa,
    /// <summary><c>"pissa_niter_N"</c>: PiSSA with a randomised low-rank SVD of N power iterations.</summary>
    PissaLowRank,
    /// <summary><c>"olora"</c>: A and B from a QR decomposition of the base weight, which keeps the residual.</summary>
    Olora,
    /// <summary><c>"orthogonal"</c>: A and B from orthogonal rows of a random matrix, so that B·A starts at zero (even r).</summary>
    Orthogonal,
}
