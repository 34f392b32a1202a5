using System.Text.Json.Serialization;
using Peft.Methods.Lycoris;

namespace Peft.Methods.LoHa;

/// <summary>LoHa's adapter_config.json (the reference's <c>LoHaConfig</c>).</summary>
public sealed record LoHaConfig : LycorisConfig
{
    /// <summary>The <c>peft_type</c> "LOHA".</summary>
    public static readonly PeftType Type = new("LOHA");

    /// <inheritdoc />
    public override PeftType PeftType => Type;

    /// <summary>
    /// True (the default): <c>hada_w2_b</c> starts at zero, so the adapter starts as the identity; false starts
    /// every factor random (for tests).
    /// </summary>
    [JsonPropertyName("init_weights")]
    public bool InitWeights { get; init; } = true;

    /// <inheritdoc />
    /// <remarks>
    /// Every hada factor has r as a dimension; with a rank_pattern, r may name no saved module, so only a config
    /// without one bounds it. (LoKr needs no bound: an r past the layer's sizes makes its factors full matrices.)
    /// </remarks>
    protected override IEnumerable<ConfigSize> DeclaredSizes() =>
        RankPattern is { Count: > 0 } ? [] : [new ConfigSize("r", R, SizeBound.TensorDimension)];
}
