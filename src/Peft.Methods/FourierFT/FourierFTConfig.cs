using System.Text.Json.Serialization;
using System.Text.RegularExpressions;
using Peft.Tuners;

namespace Peft.Methods.FourierFT;

/// <summary>FourierFT's adapter_config.json (the reference's <c>FourierFTConfig</c>).</summary>
public sealed record FourierFTConfig : TunerConfig, ILayerSelection
{
    /// <summary>Only layers with these indices get an adapter.</summary>
    [JsonPropertyName("layers_to_transform")]
    public IReadOnlyList<int>? LayersToTransform { get; init; }

    /// <summary>The name of the layer list that <see cref="LayersToTransform"/> indexes (e.g. "h", "layers").</summary>
    [JsonPropertyName("layers_pattern")]
    public string? LayersPattern { get; init; }

    /// <summary>The <c>peft_type</c> "FOURIERFT".</summary>
    public static readonly PeftType Type = new("FOURIERFT");

    /// <inheritdoc />
    public override PeftType PeftType => Type;

    /// <summary>How many spectral entries each layer learns.</summary>
    [JsonPropertyName("n_frequency")]
    public int NFrequency { get; init; } = 1000;

    /// <summary>The factor the inverse transform is multiplied by.</summary>
    [JsonPropertyName("scaling")]
    public double Scaling { get; init; } = 150.0;

    /// <summary>Seed of the generator that picks the spectral entries (the same entries for every layer of one shape).</summary>
    [JsonPropertyName("random_loc_seed")]
    public long? RandomLocSeed { get; init; } = 777;

    /// <summary>True when the base layer stores its weight (in, out), as GPT-2's Conv1D does; as in the reference, the layer's kind decides (true for Conv1D, false for Linear).</summary>
    [JsonPropertyName("fan_in_fan_out")]
    public bool FanInFanOut { get; init; }

    /// <summary>Which biases train: only "none" is supported.</summary>
    [JsonPropertyName("bias")]
    public string Bias { get; init; } = "none";

    /// <summary>Per-module <see cref="NFrequency"/>, keyed by a module-name pattern.</summary>
    [JsonPropertyName("n_frequency_pattern")]
    public IReadOnlyDictionary<string, int>? NFrequencyPattern { get; init; } = new Dictionary<string, int>();

    /// <summary>True: the spectrum starts at zero (the identity); false (the reference's default): standard normal.</summary>
    [JsonPropertyName("init_weights")]
    public bool InitWeights { get; init; }

    /// <summary>The n_frequency for the module at <paramref name="path"/>: the first pattern key matching a dotted suffix of it (the reference's <c>.*\.{key}$</c>).</summary>
    public int NFrequencyFor(string path)
    {
        foreach (var (pattern, value) in NFrequencyPattern ?? new Dictionary<string, int>())
        {
            if (Regex.IsMatch(path, $"^.*\\.(?:{pattern})$", RegexOptions.CultureInvariant)) return value;
        }
        return NFrequency;
    }

    /// <inheritdoc />
    public override void Validate()
    {
        base.Validate();
        if (NFrequency <= 0) throw new PeftConfigException($"`n_frequency` should be a positive integer value but the value passed is {NFrequency}.");
        foreach (var (pattern, value) in NFrequencyPattern ?? new Dictionary<string, int>())
        {
            if (value <= 0) throw new PeftConfigException($"`n_frequency_pattern` gives '{pattern}' {value} frequencies; it must be positive.");
        }
        if (RandomLocSeed is null) throw new PeftConfigException("`random_loc_seed` must be set: it picks the spectral entries, which are not saved.");
        if (Bias != "none") throw new PeftConfigException($"`bias` = \"{Bias}\" is not supported; use \"none\".");
        ILayerSelection.Check(this, TargetModules);
    }
}
