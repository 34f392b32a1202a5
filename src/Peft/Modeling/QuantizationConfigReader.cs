using System.Text.Json;

namespace Peft.Modeling;

/// <summary>
/// config.json's <c>quantization_config</c>, which transformers writes beside a pre-quantized checkpoint and reads back
/// without being asked: a bitsandbytes one becomes the model's <see cref="QuantizationOptions"/>; any other method is refused.
/// </summary>
internal static class QuantizationConfigReader
{
    /// <summary>The bitsandbytes options config.json names, or null when it names none.</summary>
    /// <exception cref="ModelConfigException">It names a method or a setting this library cannot load.</exception>
    public static QuantizationOptions? Read(string configPath)
    {
        using var document = JsonDocument.Parse(File.ReadAllBytes(configPath));
        if (!document.RootElement.TryGetProperty("quantization_config", out var config) || config.ValueKind == JsonValueKind.Null) return null;
        if (config.ValueKind != JsonValueKind.Object) throw new ModelConfigException($"{configPath}: quantization_config is not an object.");
        var method = String(config, "quant_method") ?? "bitsandbytes";
        if (method != "bitsandbytes")
        {
            throw new ModelConfigException($"{configPath}: quantization_config.quant_method '{method}' is not supported; only bitsandbytes (8-bit and 4-bit) checkpoints load here.");
        }
        if (Bool(config, "llm_int8_has_fp16_weight"))
        {
            throw new ModelConfigException($"{configPath}: quantization_config.llm_int8_has_fp16_weight true (an 8-bit model trained in fp16) is not supported.");
        }
        if (String(config, "bnb_4bit_quant_storage") is { } storage && storage != "uint8")
        {
            throw new ModelConfigException($"{configPath}: quantization_config.bnb_4bit_quant_storage '{storage}' is not supported; bitsandbytes' default uint8 is.");
        }
        try
        {
            return new QuantizationOptions
            {
                LoadIn8Bit = Bool(config, "load_in_8bit"),
                LoadIn4Bit = Bool(config, "load_in_4bit"),
                Bnb4BitQuantType = String(config, "bnb_4bit_quant_type") ?? "fp4",
                Bnb4BitUseDoubleQuant = Bool(config, "bnb_4bit_use_double_quant"),
                Bnb4BitComputeDType = String(config, "bnb_4bit_compute_dtype") is { } compute ? ModelLoadOptions.ParseDType(compute) : ModelDType.Float32,
                LlmInt8SkipModules = config.TryGetProperty("llm_int8_skip_modules", out var skip) && skip.ValueKind == JsonValueKind.Array
                    ? skip.EnumerateArray().Select(e => e.GetString() ?? "").ToList()
                    : [],
            };
        }
        catch (ArgumentException e)
        {
            throw new ModelConfigException($"{configPath}: quantization_config: {e.Message}");
        }
    }

    private static bool Bool(JsonElement config, string key) => config.TryGetProperty(key, out var value) && value.ValueKind == JsonValueKind.True;

    private static string? String(JsonElement config, string key) =>
        config.TryGetProperty(key, out var value) && value.ValueKind == JsonValueKind.String ? value.GetString() : null;
}
