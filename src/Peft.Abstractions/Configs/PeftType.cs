using System.Text.Json;
using System.Text.Json.Serialization;

namespace Peft;

/// <summary>
/// The name of a PEFT method as written in <c>adapter_config.json</c> (<c>"peft_type": "LORA"</c>).
/// A string rather than an enum so that a plugin can add a method without editing this type.
/// </summary>
[JsonConverter(typeof(PeftTypeJsonConverter))]
public readonly record struct PeftType(string Name)
{
    /// <summary>Low-rank adaptation.</summary>
    public static readonly PeftType Lora = new("LORA");
    /// <summary>Prompt tuning (soft prompt embeddings).</summary>
    public static readonly PeftType PromptTuning = new("PROMPT_TUNING");
    /// <summary>P-tuning (prompt encoder).</summary>
    public static readonly PeftType PTuning = new("P_TUNING");
    /// <summary>Prefix tuning (per-layer key/value prefixes).</summary>
    public static readonly PeftType PrefixTuning = new("PREFIX_TUNING");
    /// <summary>Infused adapter by inhibiting and amplifying inner activations.</summary>
    public static readonly PeftType IA3 = new("IA3");

    /// <inheritdoc />
    public override string ToString() => Name;
}

internal sealed class PeftTypeJsonConverter : JsonConverter<PeftType>
{
    public override PeftType Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) =>
        new(reader.GetString() ?? throw new JsonException("peft_type must be a string"));

    public override void Write(Utf8JsonWriter writer, PeftType value, JsonSerializerOptions options) =>
        writer.WriteStringValue(value.Name);
}
