using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;
using System.Text.Json.Serialization.Metadata;

namespace Peft;

/// <summary>JSON settings shared by every config read and written, matching the reference's files.</summary>
public static class PeftJson
{
    /// <summary>Snake-case names come from attributes; nulls are written (the reference writes them); indented.</summary>
    public static JsonSerializerOptions Options { get; } = new()
    {
        WriteIndented = true,
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
        ReadCommentHandling = JsonCommentHandling.Skip,
        AllowTrailingCommas = true,
        TypeInfoResolver = new DefaultJsonTypeInfoResolver { Modifiers = { NamePeftType } },
    };

    /// <summary>
    /// Writes <paramref name="config"/> as the reference writes adapter_config.json: every field,
    /// keys sorted, two-space indentation.
    /// </summary>
    public static string Serialize(PeftConfig config)
    {
        var node = JsonSerializer.SerializeToNode(config, config.GetType(), Options)!.AsObject();
        var sorted = new JsonObject();
        foreach (var (key, value) in node.OrderBy(p => p.Key, StringComparer.Ordinal))
        {
            sorted[key] = value?.DeepClone();
        }
        return sorted.ToJsonString(Options);
    }

    /// <summary>
    /// A method's override of <see cref="PeftConfig.PeftType"/> shows up beside the base's
    /// <c>peft_type</c> (System.Text.Json does not carry the attribute over to overrides); drop the
    /// duplicate once here rather than asking every method to annotate its override.
    /// </summary>
    private static void NamePeftType(JsonTypeInfo info)
    {
        if (!typeof(PeftConfig).IsAssignableFrom(info.Type)) return;
        for (int i = info.Properties.Count - 1; i >= 0; i--)
        {
            if (info.Properties[i].Name == nameof(PeftConfig.PeftType)) info.Properties.RemoveAt(i);
        }
    }
}
