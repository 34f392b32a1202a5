using System.Text.Json;

namespace Peft.Serving;

/// <summary>
/// What a model's generation_config.json says about sampling, for requests that leave a field out: only the keys the
/// file has (temperature, top_p, top_k) and its end-of-sequence ids, as vLLM's <c>--generation-config auto</c> does. A
/// field the file lacks keeps OpenAI's default; do_sample is not consulted, since a request's temperature decides.
/// </summary>
/// <param name="Temperature">The file's temperature, or null.</param>
/// <param name="TopP">The file's top_p, or null.</param>
/// <param name="TopK">The file's top_k, or null.</param>
/// <param name="EosTokenIds">The file's eos_token_id (one or several), or null for config.json's.</param>
/// <param name="MaxNewTokens">The file's max_new_tokens, or null (the server's default then applies; its limit always does).</param>
public sealed record ModelSamplingDefaults(double? Temperature = null, double? TopP = null, int? TopK = null, IReadOnlyList<long>? EosTokenIds = null,
    int? MaxNewTokens = null)
{
    /// <summary>No file: OpenAI's defaults, config.json's end-of-sequence id.</summary>
    public static ModelSamplingDefaults None { get; } = new();

    /// <summary>Reads <paramref name="modelDirectory"/>'s generation_config.json; <see cref="None"/> without one.</summary>
    /// <exception cref="InvalidDataException">The file is not valid JSON or a value has the wrong kind (named).</exception>
    public static ModelSamplingDefaults FromDirectory(string modelDirectory)
    {
        var path = Path.Combine(modelDirectory, "generation_config.json");
        if (!File.Exists(path)) return None;
        // The values are read (and refused by key) as everywhere else; the file's own keys say which ones it sets.
        var values = GenerationOptions.FromDirectory(modelDirectory);
        using var document = JsonDocument.Parse(File.ReadAllBytes(path));
        bool Has(string key) => document.RootElement.TryGetProperty(key, out var value) && value.ValueKind != JsonValueKind.Null;
        return new ModelSamplingDefaults(
            Has("temperature") ? values.Temperature : null,
            Has("top_p") ? values.TopP : null,
            Has("top_k") ? values.TopK : null,
            values.EosTokenIds,
            Has("max_new_tokens") ? values.MaxNewTokens : null);
    }
}
