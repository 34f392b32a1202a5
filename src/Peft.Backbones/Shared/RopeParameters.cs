using Peft.Modeling;
using System.Text.Json;
using System.Text.Json.Serialization;
using Peft.Plugins;

namespace Peft.Backbones.Shared;

/// <summary>
/// Rotary position embedding settings as config.json writes them: transformers 5's
/// <c>rope_parameters</c>, or transformers 4's <c>rope_scaling</c> (whose type key may be
/// <c>type</c> instead of <c>rope_type</c>).
/// </summary>
public sealed record RopeParameters
{
    /// <summary>The scaling scheme (<c>"default"</c>, <c>"linear"</c>, <c>"llama3"</c>, ...).</summary>
    [JsonPropertyName("rope_type")]
    public string? RopeType { get; init; }

    /// <summary>The scheme under its legacy key.</summary>
    [JsonPropertyName("type")]
    public string? LegacyType { get; init; }

    /// <summary>The base of the frequencies.</summary>
    [JsonPropertyName("rope_theta")]
    public double? RopeTheta { get; init; }

    /// <summary>The scaling factor (linear, llama3).</summary>
    [JsonPropertyName("factor")]
    public double? Factor { get; init; }

    /// <summary>The fraction of each head that is rotated.</summary>
    [JsonPropertyName("partial_rotary_factor")]
    public double? PartialRotaryFactor { get; init; }

    /// <summary>llama3: wavelengths above original / low_freq_factor are scaled fully.</summary>
    [JsonPropertyName("low_freq_factor")]
    public double? LowFreqFactor { get; init; }

    /// <summary>llama3: wavelengths below original / high_freq_factor are not scaled.</summary>
    [JsonPropertyName("high_freq_factor")]
    public double? HighFreqFactor { get; init; }

    /// <summary>llama3: the context length the model was pre-trained with.</summary>
    [JsonPropertyName("original_max_position_embeddings")]
    public int? OriginalMaxPositionEmbeddings { get; init; }

    /// <summary>Keys this library does not model.</summary>
    [JsonExtensionData]
    public Dictionary<string, JsonElement>? ExtensionData { get; init; }
}

/// <summary>The rotary embedding a model uses, resolved from whichever keys its config.json has.</summary>
/// <param name="Type">The scheme: one of <see cref="SupportedTypes"/>.</param>
/// <param name="Theta">The base of the frequencies.</param>
/// <param name="PartialRotaryFactor">The fraction of each head that is rotated.</param>
/// <param name="Factor">Scaling factor (linear, llama3).</param>
/// <param name="LowFreqFactor">llama3's low-frequency factor.</param>
/// <param name="HighFreqFactor">llama3's high-frequency factor.</param>
/// <param name="OriginalMaxPositions">llama3's pre-training context length.</param>
public sealed record RopeSettings(
    string Type,
    double Theta,
    double PartialRotaryFactor = 1.0,
    double Factor = 1.0,
    double LowFreqFactor = 1.0,
    double HighFreqFactor = 4.0,
    int OriginalMaxPositions = 8192)
{
    /// <summary>The schemes this library computes.</summary>
    public static IReadOnlyList<string> SupportedTypes { get; } = ["default", "linear", "llama3"];

    /// <summary>
    /// Resolves the settings: <paramref name="parameters"/> (<c>rope_parameters</c>) first, then
    /// the legacy keys (<c>rope_scaling</c>, a top-level theta and partial factor), then the defaults.
    /// </summary>
    /// <param name="parameters">transformers 5's <c>rope_parameters</c>, if present.</param>
    /// <param name="legacyScaling">transformers 4's <c>rope_scaling</c>, if present.</param>
    /// <param name="legacyTheta">A top-level base (<c>rope_theta</c>, <c>rotary_emb_base</c>), if present.</param>
    /// <param name="legacyPartial">A top-level partial factor (<c>partial_rotary_factor</c>, <c>rotary_pct</c>), if present.</param>
    /// <param name="defaultTheta">The architecture's default base.</param>
    /// <param name="defaultPartial">The architecture's default partial factor.</param>
    /// <param name="source">The config file, for error messages.</param>
    /// <exception cref="ModelConfigException">The scheme is unknown or lacks a value it needs.</exception>
    public static RopeSettings Resolve(
        RopeParameters? parameters, RopeParameters? legacyScaling, double? legacyTheta, double? legacyPartial,
        double defaultTheta, double defaultPartial, string source)
    {
        var type = parameters?.RopeType ?? parameters?.LegacyType ?? legacyScaling?.RopeType ?? legacyScaling?.LegacyType ?? "default";
        var key = parameters is not null ? "rope_parameters" : "rope_scaling";
        if (!SupportedTypes.Contains(type))
        {
            throw new ModelConfigException(
                $"{source} at key '{key}': rope type '{type}' is not supported; supported: {string.Join(", ", SupportedTypes)}.");
        }
        var theta = parameters?.RopeTheta ?? legacyScaling?.RopeTheta ?? legacyTheta ?? defaultTheta;
        var partial = parameters?.PartialRotaryFactor ?? legacyScaling?.PartialRotaryFactor ?? legacyPartial ?? defaultPartial;
        var scaling = type == "default" ? null : parameters ?? legacyScaling;
        var settings = new RopeSettings(type, theta, partial);
        if (scaling is null) return settings;

        var factor = scaling.Factor ?? throw new ModelConfigException($"{source} at key '{key}': rope type '{type}' needs 'factor'.");
        if (type == "linear") return settings with { Factor = factor };
        return settings with
        {
            Factor = factor,
            LowFreqFactor = scaling.LowFreqFactor ?? throw new ModelConfigException($"{source} at key '{key}': rope type 'llama3' needs 'low_freq_factor'."),
            HighFreqFactor = scaling.HighFreqFactor ?? throw new ModelConfigException($"{source} at key '{key}': rope type 'llama3' needs 'high_freq_factor'."),
            OriginalMaxPositions = scaling.OriginalMaxPositionEmbeddings
                ?? throw new ModelConfigException($"{source} at key '{key}': rope type 'llama3' needs 'original_max_position_embeddings'."),
        };
    }
}
