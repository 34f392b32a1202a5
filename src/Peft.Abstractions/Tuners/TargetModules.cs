using System.Text.Json;
using System.Text.Json.Serialization;
using System.Text.RegularExpressions;

namespace Peft.Tuners;

/// <summary>
/// <c>target_modules</c> as the reference accepts it: a list of names (each matching a module
/// whose full name equals it or ends with <c>.name</c>), one string used as a full-match regular
/// expression, or the special string <c>"all-linear"</c>.
/// </summary>
[JsonConverter(typeof(TargetModulesJsonConverter))]
public sealed record TargetModules
{
    /// <summary>The special value that targets every linear layer except the output head.</summary>
    public const string AllLinearValue = "all-linear";

    private TargetModules(IReadOnlyList<string>? names, string? pattern)
    {
        Names = names;
        Pattern = pattern;
        _regex = pattern is null || pattern == AllLinearValue ? null : Compile(pattern);
    }

    private readonly Regex? _regex;

    /// <summary>The full-match expression; a malformed one is a config error, not a RegexParseException (found by fuzz/Peft.Fuzz).</summary>
    private static Regex Compile(string pattern)
    {
        try
        {
            return new Regex($"^(?:{pattern})$", RegexOptions.CultureInvariant);
        }
        catch (RegexParseException e)
        {
            throw new PeftConfigException($"`{pattern}` is not a valid regular expression ({e.Message}); target and exclude modules take a full-match expression, a list of names or \"all-linear\".");
        }
    }

    /// <summary>The names, when given as a list.</summary>
    public IReadOnlyList<string>? Names { get; }

    /// <summary>The expression, when given as one string.</summary>
    public string? Pattern { get; }

    /// <summary>True for <c>"all-linear"</c>.</summary>
    public bool IsAllLinear => Pattern == AllLinearValue;

    /// <summary>Targets given as names.</summary>
    public static TargetModules FromNames(IEnumerable<string> names) => new(names.ToArray(), null);

    /// <summary>Targets given as one regular expression (or <c>"all-linear"</c>).</summary>
    public static TargetModules FromPattern(string pattern) => new(null, pattern);

    /// <summary>Names as C# writes them: <c>TargetModules = new[] { "q", "v" }</c>.</summary>
    public static implicit operator TargetModules(string[] names) => FromNames(names);

    /// <summary>One string as the reference takes it: a full-match regular expression, or <c>"all-linear"</c>.</summary>
    public static implicit operator TargetModules(string pattern) => FromPattern(pattern);

    /// <summary>Whether the module at <paramref name="path"/> (its full dotted name) is a target.</summary>
    public bool Matches(string path)
    {
        if (_regex is not null) return _regex.IsMatch(path);
        if (Names is null) return false;
        foreach (var name in Names)
        {
            if (path == name || path.EndsWith("." + name, StringComparison.Ordinal)) return true;
        }
        return false;
    }

    /// <inheritdoc />
    public override string ToString() => Pattern ?? "[" + string.Join(", ", Names ?? []) + "]";
}

internal sealed class TargetModulesJsonConverter : JsonConverter<TargetModules>
{
    public override TargetModules? Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
    {
        switch (reader.TokenType)
        {
            case JsonTokenType.Null:
                return null;
            case JsonTokenType.String:
                return TargetModules.FromPattern(reader.GetString()!);
            case JsonTokenType.StartArray:
                var names = new List<string>();
                while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
                {
                    names.Add(reader.GetString() ?? throw new JsonException("target_modules entries must be strings"));
                }
                return TargetModules.FromNames(names);
            default:
                throw new JsonException("target_modules must be a string or a list of strings");
        }
    }

    public override void Write(Utf8JsonWriter writer, TargetModules value, JsonSerializerOptions options)
    {
        if (value.Pattern is not null)
        {
            writer.WriteStringValue(value.Pattern);
            return;
        }
        writer.WriteStartArray();
        foreach (var name in value.Names!) writer.WriteStringValue(name);
        writer.WriteEndArray();
    }
}
