using System.Text.Json;
using System.Text.Json.Serialization;

namespace Peft.Methods.Lora;

/// <summary>
/// <c>init_lora_weights</c> as C# sets it: <c>true</c>, <c>false</c>, a <see cref="LoraInit"/> or a string such as
/// <c>"gaussian"</c> convert implicitly. The JSON value is kept as written, so a config read from disk is written
/// back unchanged; values the plugin does not implement ("pissa", "olora", ...) are kept and refused by
/// <see cref="LoraConfig.Validate"/> with their name.
/// </summary>
[JsonConverter(typeof(LoraInitWeightsJsonConverter))]
public sealed record LoraInitWeights
{
    private LoraInitWeights(string json) => Json = json;

    /// <summary>The value as JSON text: <c>true</c>, <c>false</c>, <c>"gaussian"</c>, ...</summary>
    public string Json { get; }

    /// <summary><c>true</c>: A Kaiming-uniform, B zeros.</summary>
    public static LoraInitWeights Default { get; } = new("true");

    /// <summary><c>false</c>: both random.</summary>
    public static LoraInitWeights Random { get; } = new("false");

    /// <summary><c>"gaussian"</c>: A normal with std 1/r, B zeros.</summary>
    public static LoraInitWeights Gaussian { get; } = new("\"gaussian\"");

    /// <summary><c>true</c> or <c>false</c>.</summary>
    public static implicit operator LoraInitWeights(bool value) => value ? Default : Random;

    /// <summary>A string value, e.g. <c>"gaussian"</c>.</summary>
    public static implicit operator LoraInitWeights(string value) => new(JsonSerializer.Serialize(value));

    /// <summary>The value of an initialisation.</summary>
    public static implicit operator LoraInitWeights(LoraInit init) => init switch
    {
        LoraInit.Default => Default,
        LoraInit.Random => Random,
        LoraInit.Gaussian => Gaussian,
        LoraInit.Pissa => "pissa",
        LoraInit.Olora => "olora",
        LoraInit.Orthogonal => "orthogonal",
        _ => throw new ArgumentOutOfRangeException(nameof(init), init, "has no single value: give \"pissa_niter_<N>\" as a string."),
    };

    /// <summary>Any JSON value (as the property took before it was typed).</summary>
    public static implicit operator LoraInitWeights(JsonElement value) => FromJson(value);

    /// <summary>The value of a JSON element, normalised to compact text.</summary>
    public static LoraInitWeights FromJson(JsonElement value) => value.ValueKind switch
    {
        JsonValueKind.True => Default,
        JsonValueKind.False => Random,
        _ => new(JsonSerializer.Serialize(value)),
    };

    /// <inheritdoc />
    public override string ToString() => Json;
}

internal sealed class LoraInitWeightsJsonConverter : JsonConverter<LoraInitWeights>
{
    public override LoraInitWeights Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
    {
        using var document = JsonDocument.ParseValue(ref reader);
        return LoraInitWeights.FromJson(document.RootElement);
    }

    public override void Write(Utf8JsonWriter writer, LoraInitWeights value, JsonSerializerOptions options) => writer.WriteRawValue(value.Json);
}
