using System.Text.Json.Serialization;
using Peft.Tuners;

namespace Peft.Methods.Boft;

/// <summary>BOFT's adapter_config.json (the reference's <c>BOFTConfig</c>).</summary>
public sealed record BoftConfig : TunerConfig, ILayerSelection
{
    /// <summary>Only layers with these indices get an adapter.</summary>
    [JsonPropertyName("layers_to_transform")]
    public IReadOnlyList<int>? LayersToTransform { get; init; }

    /// <summary>The name of the layer list that <see cref="LayersToTransform"/> indexes (e.g. "h", "layers").</summary>
    [JsonPropertyName("layers_pattern")]
    public string? LayersPattern { get; init; }

    /// <summary>The <c>peft_type</c> "BOFT".</summary>
    public static readonly PeftType Type = new("BOFT");

    /// <inheritdoc />
    public override PeftType PeftType => Type;

    /// <summary>Size of each orthogonal block; set this or <see cref="BoftBlockNum"/>, the other 0.</summary>
    [JsonPropertyName("boft_block_size")]
    public int BoftBlockSize { get; init; } = 4;

    /// <summary>Number of blocks per butterfly factor; set this or <see cref="BoftBlockSize"/>, the other 0.</summary>
    [JsonPropertyName("boft_block_num")]
    public int BoftBlockNum { get; init; }

    /// <summary>Number of butterfly factors (1: plain block-diagonal OFT).</summary>
    [JsonPropertyName("boft_n_butterfly_factor")]
    public int BoftNButterflyFactor { get; init; } = 1;

    /// <summary>During training, the share of one factor's blocks replaced by the identity.</summary>
    [JsonPropertyName("boft_dropout")]
    public double BoftDropout { get; init; }

    /// <summary>True when the base layer stores its weight (in, out); the reference resets it to false for Linear layers.</summary>
    [JsonPropertyName("fan_in_fan_out")]
    public bool FanInFanOut { get; init; }

    /// <summary>Which biases train: only "none" is supported.</summary>
    [JsonPropertyName("bias")]
    public string Bias { get; init; } = "none";

    /// <summary>True: blocks zero (identity rotations) and scales one; false: normal (std 0.1) around them (for tests).</summary>
    [JsonPropertyName("init_weights")]
    public bool InitWeights { get; init; } = true;

    /// <inheritdoc />
    public override void Validate()
    {
        base.Validate();
        ILayerSelection.Check(this, TargetModules);
        if (BoftBlockSize == 0 && BoftBlockNum == 0)
        {
            throw new PeftConfigException($"Either `boft_block_size` or `boft_block_num` must be non-zero. Currently, boft_block_size = {BoftBlockSize} and boft_block_num = {BoftBlockNum}.");
        }
        if (BoftBlockSize != 0 && BoftBlockNum != 0)
        {
            throw new PeftConfigException(
                $"You can only specify either boft_block_size ({BoftBlockSize}) or boft_block_num ({BoftBlockNum}), but not both simultaneously, because boft_block_size x boft_block_num == in_features.");
        }
        if (BoftBlockSize < 0 || BoftBlockNum < 0) throw new PeftConfigException("`boft_block_size` and `boft_block_num` cannot be negative.");
        if (BoftNButterflyFactor < 1)
        {
            throw new PeftConfigException($"You can only specify boft_n_butterfly_factor {BoftNButterflyFactor} to be a positive integer number.");
        }
        if (Bias != "none") throw new PeftConfigException($"`bias` = \"{Bias}\" is not supported; use \"none\".");
        if (BoftDropout is < 0 or > 1) throw new PeftConfigException($"`boft_dropout` must be in [0, 1], got {BoftDropout}.");
    }
}
