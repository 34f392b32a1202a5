using System.Text.Json.Serialization;
using Peft.Tuners;

namespace Peft.Methods.Oft;

/// <summary>OFT's adapter_config.json (the reference's <c>OFTConfig</c>, peft ≥ 0.15's skew-vector form).</summary>
public sealed record OftConfig : TunerConfig, ILayerSelection
{
    /// <summary>Only layers with these indices get an adapter.</summary>
    [JsonPropertyName("layers_to_transform")]
    public IReadOnlyList<int>? LayersToTransform { get; init; }

    /// <summary>The name of the layer list that <see cref="LayersToTransform"/> indexes (e.g. "h", "layers").</summary>
    [JsonPropertyName("layers_pattern")]
    public string? LayersPattern { get; init; }

    /// <summary>The <c>peft_type</c> "OFT".</summary>
    public static readonly PeftType Type = new("OFT");

    /// <inheritdoc />
    public override PeftType PeftType => Type;

    /// <summary>Number of orthogonal blocks per layer; set this or <see cref="OftBlockSize"/>, the other 0 (in_features = r · block size).</summary>
    [JsonPropertyName("r")]
    public int R { get; init; }

    /// <summary>Size of each orthogonal block; set this or <see cref="R"/>, the other 0.</summary>
    [JsonPropertyName("oft_block_size")]
    public int OftBlockSize { get; init; } = 32;

    /// <summary>
    /// The reference's multiplicative block dropout. peft 0.21 builds it but its Linear forward never applies it,
    /// so, to give the reference's numbers, it has no effect here either.
    /// </summary>
    [JsonPropertyName("module_dropout")]
    public double ModuleDropout { get; init; }

    /// <summary>True when the base layer stores its weight (in, out); the reference resets it to false for Linear layers.</summary>
    [JsonPropertyName("fan_in_fan_out")]
    public bool FanInFanOut { get; init; }

    /// <summary>Which biases train: only "none" is supported.</summary>
    [JsonPropertyName("bias")]
    public string Bias { get; init; } = "none";

    /// <summary>True: the skew parameters start at zero (the identity rotation); false: normal with std 0.1 (for tests).</summary>
    [JsonPropertyName("init_weights")]
    public bool InitWeights { get; init; } = true;

    /// <summary>Constrained OFT: before each use, each block's skew matrix is projected into a ball of radius eps / √blocks.</summary>
    [JsonPropertyName("coft")]
    public bool Coft { get; init; }

    /// <summary>COFT's radius (the freedom of rotation); used only with <see cref="Coft"/>.</summary>
    [JsonPropertyName("eps")]
    public double Eps { get; init; } = 6e-5;

    /// <summary>One block shared by all blocks of a layer.</summary>
    [JsonPropertyName("block_share")]
    public bool BlockShare { get; init; }

    /// <summary>Approximate the Cayley transform by a Neumann series (true) or solve it exactly (false).</summary>
    [JsonPropertyName("use_cayley_neumann")]
    public bool UseCayleyNeumann { get; init; } = true;

    /// <summary>Terms of the Neumann series.</summary>
    [JsonPropertyName("num_cayley_neumann_terms")]
    public int NumCayleyNeumannTerms { get; init; } = 5;

    /// <inheritdoc />
    public override void Validate()
    {
        base.Validate();
        ILayerSelection.Check(this, TargetModules);
        if (R == 0 && OftBlockSize == 0)
        {
            throw new PeftConfigException($"Either `r` or `oft_block_size` must be non-zero. Currently, r = {R} and oft_block_size = {OftBlockSize}.");
        }
        if (R != 0 && OftBlockSize != 0)
        {
            throw new PeftConfigException(
                $"You can only specify either r ({R}) or oft_block_size ({OftBlockSize}), but not both simultaneously, because r x oft_block_size == in_features.");
        }
        if (R < 0 || OftBlockSize < 0) throw new PeftConfigException($"`r` ({R}) and `oft_block_size` ({OftBlockSize}) cannot be negative.");
        if (Bias != "none") throw new PeftConfigException($"`bias` = \"{Bias}\" is not supported; use \"none\".");
        if (ModuleDropout is < 0 or >= 1) throw new PeftConfigException($"`module_dropout` must be in [0, 1), got {ModuleDropout}.");
        if (UseCayleyNeumann && NumCayleyNeumannTerms < 1) throw new PeftConfigException($"`num_cayley_neumann_terms` must be at least 1, got {NumCayleyNeumannTerms}.");
    }
}
