using System.Text.Json;
using Peft.Plugins;

namespace Peft.Modeling;

/// <summary>Reads typed configs from config.json with errors that name the file and the key.</summary>
public static class ModelConfigs
{
    /// <summary>Deserializes <paramref name="json"/> as <typeparamref name="TConfig"/> and validates it (<see cref="ModelConfig.Validate"/>).</summary>
    /// <exception cref="ModelConfigException">A required key is missing or a value has the wrong type.</exception>
    public static TConfig Parse<TConfig>(JsonElement json, string source) where TConfig : ModelConfig
    {
        try
        {
            var config = json.Deserialize<TConfig>(PeftJson.Options)
                ?? throw new ModelConfigException($"{source}: config.json is empty.");
            config.Validate(source);
            return config;
        }
        catch (JsonException e)
        {
            var where = string.IsNullOrEmpty(e.Path) || e.Path == "$" ? "" : $" at key '{e.Path.TrimStart('$', '.')}'";
            throw new ModelConfigException($"{source}{where}: {e.Message}", e);
        }
    }
}
