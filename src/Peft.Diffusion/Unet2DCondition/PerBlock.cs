using System.Text.Json;
using System.Text.Json.Serialization;
using Peft.Modeling;

namespace Peft.Diffusion.Unet2DCondition;

/// <summary>
/// A diffusers config value that is either one integer for every down block or a list with one per block
/// (<c>attention_head_dim: 8</c> or <c>[5, 10, 20, 20]</c>).
/// </summary>
[JsonConverter(typeof(PerBlockJsonConverter))]
public sealed record PerBlock
{
    /// <summary>One value for every block.</summary>
    public PerBlock(int value) => Values = [value];

    /// <summary>One value per block, in down-block order.</summary>
    public PerBlock(IReadOnlyList<int> values)
    {
        Values = values;
        IsList = true;
    }

    /// <summary>The value, or the values in down-block order.</summary>
    public IReadOnlyList<int> Values { get; }

    /// <summary>Whether config.json held a list (which must then have one entry per block).</summary>
    public bool IsList { get; }

    /// <summary>The value of down block <paramref name="block"/>.</summary>
    public int At(int block) => IsList ? Values[block] : Values[0];

    /// <summary>Refuses a list whose length is not the number of down blocks, or a value below <paramref name="minimum"/>.</summary>
    internal void Check(string key, int blocks, int minimum, string source)
    {
        if (IsList && Values.Count != blocks)
        {
            throw new ModelConfigException($"{source} at key '{key}': {Values.Count} entries for {blocks} down_block_types (give one per block, or one integer).");
        }
        foreach (var value in Values)
        {
            if (value < minimum) throw new ModelConfigException($"{source} at key '{key}': {value} is below {minimum}.");
        }
    }
}

/// <summary>Reads an integer or a list of integers; writes them back the way they were given.</summary>
internal sealed class PerBlockJsonConverter : JsonConverter<PerBlock>
{
    public override PerBlock Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
    {
        if (reader.TokenType == JsonTokenType.Number) return new PerBlock(reader.GetInt32());
        if (reader.TokenType != JsonTokenType.StartArray) throw new JsonException("expected an integer or a list of integers.");
        var values = new List<int>();
        while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
        {
            if (reader.TokenType != JsonTokenType.Number) throw new JsonException("expected a list of integers.");
            values.Add(reader.GetInt32());
        }
        return new PerBlock(values);
    }

    public override void Write(Utf8JsonWriter writer, PerBlock value, JsonSerializerOptions options)
    {
        if (!value.IsList)
        {
            writer.WriteNumberValue(value.Values[0]);
            return;
        }
        writer.WriteStartArray();
        foreach (var v in value.Values) writer.WriteNumberValue(v);
        writer.WriteEndArray();
    }
}
