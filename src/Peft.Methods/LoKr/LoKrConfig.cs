using System.Text.Json;
using System.Text.Json.Serialization;
using Peft.Methods.Lycoris;

namespace Peft.Methods.LoKr;

/// <summary>LoKr's adapter_config.json (the reference's <c>LoKrConfig</c>).</summary>
public sealed record LoKrConfig : LycorisConfig
{
    /// <summary>The <c>peft_type</c> "LOKR".</summary>
    public static readonly PeftType Type = new("LOKR");

    /// <inheritdoc />
    public override PeftType PeftType => Type;

    /// <summary>Also split the left Kronecker factor into a low-rank product when r is small enough.</summary>
    [JsonPropertyName("decompose_both")]
    public bool DecomposeBoth { get; init; }

    /// <summary>
    /// The factor each dimension is split around: -1 splits near the square root; a positive divisor of the
    /// dimension gives (factor, dimension / factor).
    /// </summary>
    [JsonPropertyName("decompose_factor")]
    public int DecomposeFactor { get; init; } = -1;

    /// <summary>Whether rank dropout rescales the kept rows by their mean.</summary>
    [JsonPropertyName("rank_dropout_scale")]
    public bool RankDropoutScale { get; init; }

    /// <summary>
    /// <see cref="LoKrInit.Default"/> (JSON <c>true</c>: the left factor starts at zero), <see cref="LoKrInit.Random"/>
    /// (<c>false</c>) or <see cref="LoKrInit.Lycoris"/> (<c>"lycoris"</c>: the right factor starts at zero).
    /// </summary>
    [JsonPropertyName("init_weights")]
    public LoKrInit InitWeights { get; init; } = LoKrInit.Default;
}

/// <summary>How LoKr's factors start.</summary>
[JsonConverter(typeof(LoKrInitJsonConverter))]
public enum LoKrInit
{
    /// <summary>JSON <c>true</c>: w1 (or w1_a) zeros, the rest Kaiming-uniform; the update starts at zero.</summary>
    Default,
    /// <summary>JSON <c>false</c>: every factor Kaiming-uniform (for tests).</summary>
    Random,
    /// <summary>JSON <c>"lycoris"</c>: w2 (or w2_b) zeros, as the LyCORIS repository does.</summary>
    Lycoris,
}

internal sealed class LoKrInitJsonConverter : JsonConverter<LoKrInit>
{
    public override LoKrInit Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) => reader.TokenType switch
    {
        JsonTokenType.True => LoKrInit.Default,
        JsonTokenType.False => LoKrInit.Random,
        JsonTokenType.String when reader.GetString() == "lycoris" => LoKrInit.Lycoris,
        _ => throw new JsonException("init_weights must be true, false or \"lycoris\"."),
    };

    public override void Write(Utf8JsonWriter writer, LoKrInit value, JsonSerializerOptions options)
    {
        switch (value)
        {
            case LoKrInit.Lycoris:
                writer.WriteStringValue("lycoris");
                break;
            default:
                writer.WriteBooleanValue(value == LoKrInit.Default);
                break;
        }
    }
}
