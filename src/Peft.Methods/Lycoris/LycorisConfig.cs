using System.Text.Json.Serialization;
using System.Text.RegularExpressions;
using Peft.Tuners;

namespace Peft.Methods.Lycoris;

/// <summary>
/// Config fields LoHa and LoKr share (the reference's <c>LycorisConfig</c> plus the fields both of its
/// subclasses declare): rank, alpha, dropouts and per-module patterns.
/// </summary>
public abstract record LycorisConfig : TunerConfig, ILayerSelection
{
    /// <summary>Only layers with these indices get an adapter.</summary>
    [JsonPropertyName("layers_to_transform")]
    public IReadOnlyList<int>? LayersToTransform { get; init; }

    /// <summary>The name of the layer list that <see cref="LayersToTransform"/> indexes (e.g. "h", "layers").</summary>
    [JsonPropertyName("layers_pattern")]
    public string? LayersPattern { get; init; }

    /// <summary>Rank of the factors.</summary>
    [JsonPropertyName("r")]
    public int R { get; init; } = 8;

    /// <summary>Scale numerator: the update is multiplied by alpha / r.</summary>
    [JsonPropertyName("alpha")]
    public double Alpha { get; init; } = 8;

    /// <summary>During training, the probability of zeroing each output row of the update.</summary>
    [JsonPropertyName("rank_dropout")]
    public double RankDropout { get; init; }

    /// <summary>During training, the probability of skipping a layer's update for a whole forward pass.</summary>
    [JsonPropertyName("module_dropout")]
    public double ModuleDropout { get; init; }

    /// <summary>The FedPara "Proposition 3" decomposition for convolutions with a kernel larger than 1; Linear layers ignore it, as in the reference.</summary>
    [JsonPropertyName("use_effective_conv2d")]
    public bool UseEffectiveConv2d { get; init; }

    /// <summary>Per-module ranks, keyed by a module-name pattern.</summary>
    [JsonPropertyName("rank_pattern")]
    public IReadOnlyDictionary<string, int>? RankPattern { get; init; } = new Dictionary<string, int>();

    /// <summary>Per-module alphas, keyed by a module-name pattern.</summary>
    [JsonPropertyName("alpha_pattern")]
    public IReadOnlyDictionary<string, double>? AlphaPattern { get; init; } = new Dictionary<string, double>();

    /// <summary>The rank for the module at <paramref name="path"/>.</summary>
    public int RankFor(string path) => Lookup(RankPattern, path) ?? R;

    /// <summary>The alpha for the module at <paramref name="path"/>.</summary>
    public double AlphaFor(string path) => Lookup(AlphaPattern, path) ?? Alpha;

    /// <summary>The reference's <c>get_pattern_key</c>: the first key that matches the whole name or a dotted suffix of it.</summary>
    private static T? Lookup<T>(IReadOnlyDictionary<string, T>? patterns, string path) where T : struct
    {
        if (patterns is null) return null;
        foreach (var (pattern, value) in patterns)
        {
            if (Regex.IsMatch(path, $"^(?:.*\\.)?(?:{pattern})$", RegexOptions.CultureInvariant)) return value;
        }
        return null;
    }

    /// <inheritdoc />
    public override void Validate()
    {
        base.Validate();
        ILayerSelection.Check(this, TargetModules);
        if (R <= 0) throw new PeftConfigException($"`r` should be a positive integer value but the value passed is {R}.");
        foreach (var (pattern, rank) in RankPattern ?? new Dictionary<string, int>())
        {
            if (rank <= 0) throw new PeftConfigException($"`rank_pattern` gives '{pattern}' the rank {rank}; ranks must be positive.");
        }
        if (RankDropout is < 0 or >= 1) throw new PeftConfigException($"`rank_dropout` must be in [0, 1), got {RankDropout}.");
        if (ModuleDropout is < 0 or > 1) throw new PeftConfigException($"`module_dropout` must be in [0, 1], got {ModuleDropout}.");
    }
}
