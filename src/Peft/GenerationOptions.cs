using System.Text.Json;

namespace Peft;

/// <summary>
/// How <see cref="Generation.Generate"/> picks tokens and when it stops (transformers' <c>GenerationConfig</c>).
/// Without <see cref="DoSample"/> it is greedy, bit-identical to <see cref="Generation.Greedy"/>.
/// </summary>
public sealed record GenerationOptions
{
    /// <summary>Tokens to add at most (<c>max_new_tokens</c>).</summary>
    public int MaxNewTokens { get; init; } = 20;

    /// <summary>Sample from the (warped) distribution instead of taking the argmax (<c>do_sample</c>).</summary>
    public bool DoSample { get; init; }

    /// <summary>Logits are divided by this before sampling (<c>temperature</c>); must be positive.</summary>
    public double Temperature { get; init; } = 1.0;

    /// <summary>Keep only the k most likely tokens when sampling (<c>top_k</c>); 0 keeps all.</summary>
    public int TopK { get; init; } = 50;

    /// <summary>Keep the smallest set of most likely tokens whose probability reaches p (<c>top_p</c>, nucleus); 1 keeps all.</summary>
    public double TopP { get; init; } = 1.0;

    /// <summary>Seed of the sampling generator, for reproducible samples; null draws from TorchSharp's global generator.</summary>
    public long? Seed { get; init; }

    /// <summary>End-of-sequence ids; null takes <c>eos_token_id</c> of the model's config.json.</summary>
    public IReadOnlyList<long>? EosTokenIds { get; init; }

    /// <summary>Further ids that end a row as end-of-sequence does (kept in the output).</summary>
    public IReadOnlyList<long> StopTokenIds { get; init; } = [];

    /// <summary>A row ends once its new tokens, decoded by <see cref="Decode"/>, contain one of these (<c>stop_strings</c>).</summary>
    public IReadOnlyList<string> StopStrings { get; init; } = [];

    /// <summary>Ids to text, for <see cref="StopStrings"/> (e.g. <c>PretrainedTokenizer.Decode</c>).</summary>
    public Func<IReadOnlyList<int>, string>? Decode { get; init; }

    /// <summary>Checks the values and throws <see cref="ArgumentException"/> naming the first bad one.</summary>
    public void Validate()
    {
        if (MaxNewTokens < 0) throw new ArgumentException($"MaxNewTokens must be ≥ 0, got {MaxNewTokens}.");
        if (!(Temperature > 0)) throw new ArgumentException($"Temperature must be positive, got {Temperature}.");
        if (TopK < 0) throw new ArgumentException($"TopK must be ≥ 0, got {TopK}.");
        if (!(TopP > 0 && TopP <= 1)) throw new ArgumentException($"TopP must be in (0, 1], got {TopP}.");
        if (StopStrings.Count > 0 && Decode is null) throw new ArgumentException("StopStrings need Decode (ids to text, e.g. the tokenizer's Decode).");
        if (StopStrings.Any(string.IsNullOrEmpty)) throw new ArgumentException("StopStrings must not contain an empty string.");
    }

    /// <summary>
    /// The options of a model directory's <c>generation_config.json</c> (do_sample, temperature, top_k, top_p,
    /// max_new_tokens, eos_token_id as a number or a list), over <paramref name="defaults"/>; the defaults alone when there is no file.
    /// </summary>
    /// <exception cref="InvalidDataException">The file is not valid JSON or a value has the wrong kind (named).</exception>
    public static GenerationOptions FromDirectory(string modelDirectory, GenerationOptions? defaults = null)
    {
        var options = defaults ?? new GenerationOptions();
        var path = Path.Combine(modelDirectory, "generation_config.json");
        if (!File.Exists(path)) return options;
        try
        {
            using var document = JsonDocument.Parse(File.ReadAllBytes(path));
            var root = document.RootElement;
            return options with
            {
                DoSample = Value(root, "do_sample", e => e.GetBoolean(), options.DoSample),
                Temperature = Value(root, "temperature", e => e.GetDouble(), options.Temperature),
                TopK = Value(root, "top_k", e => e.GetInt32(), options.TopK),
                TopP = Value(root, "top_p", e => e.GetDouble(), options.TopP),
                MaxNewTokens = Value(root, "max_new_tokens", e => e.GetInt32(), options.MaxNewTokens),
                EosTokenIds = Value<IReadOnlyList<long>?>(root, "eos_token_id",
                    e => e.ValueKind == JsonValueKind.Array ? [.. e.EnumerateArray().Select(i => i.GetInt64())] : [e.GetInt64()], options.EosTokenIds),
            };
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException or FormatException)
        {
            throw new InvalidDataException($"{path}: {e.Message}", e);
        }
    }

    private static T Value<T>(JsonElement root, string name, Func<JsonElement, T> read, T fallback)
    {
        if (!root.TryGetProperty(name, out var value) || value.ValueKind == JsonValueKind.Null) return fallback;
        try
        {
            return read(value);
        }
        catch (InvalidOperationException)
        {
            throw new FormatException($"'{name}' is {value.ValueKind}, not the kind transformers writes.");
        }
    }
}
