using System.Text.Json;
using System.Text.Json.Serialization;
using Peft.Modeling;

namespace Peft.Backbones.GptNeo;

/// <summary>GPT-Neo's config.json (transformers' <c>GPTNeoConfig</c>).</summary>
public sealed record GptNeoConfig : ModelConfig
{
    /// <summary>Hidden size.</summary>
    [JsonPropertyName("hidden_size"), JsonRequired]
    public int HiddenSize { get; init; }

    /// <summary>Attention heads per layer.</summary>
    [JsonPropertyName("num_heads"), JsonRequired]
    public int NumHeads { get; init; }

    /// <summary>Transformer blocks.</summary>
    [JsonPropertyName("num_layers"), JsonRequired]
    public int NumLayers { get; init; }

    /// <summary>Longest sequence (learned positions).</summary>
    [JsonPropertyName("max_position_embeddings"), JsonRequired]
    public int MaxPositionEmbeddings { get; init; }

    /// <summary>
    /// The attention pattern as run-length pairs, e.g. <c>[[["global", "local"], 12]]</c>: the list
    /// of kinds repeated that many times. One of this and <see cref="AttentionLayersValue"/> is required.
    /// </summary>
    [JsonPropertyName("attention_types")]
    public IReadOnlyList<JsonElement>? AttentionTypes { get; init; }

    /// <summary>The attention kind of each layer ("global" or "local"), as transformers expands attention_types.</summary>
    [JsonPropertyName("attention_layers")]
    public IReadOnlyList<string>? AttentionLayersValue { get; init; }

    /// <summary>How many keys (the query's own included) a local-attention query sees.</summary>
    [JsonPropertyName("window_size")]
    public int WindowSize { get; init; } = 256;

    /// <summary>MLP inner size; null means 4 × hidden_size.</summary>
    [JsonPropertyName("intermediate_size")]
    public int? IntermediateSize { get; init; }

    /// <summary>MLP activation.</summary>
    [JsonPropertyName("activation_function")]
    public string ActivationFunction { get; init; } = "gelu_new";

    /// <summary>Layer-norm epsilon.</summary>
    [JsonPropertyName("layer_norm_epsilon")]
    public double LayerNormEpsilon { get; init; } = 1e-5;

    /// <summary>Dropout on residual branches.</summary>
    [JsonPropertyName("resid_dropout")]
    public double ResidDropout { get; init; }

    /// <summary>Dropout on embeddings.</summary>
    [JsonPropertyName("embed_dropout")]
    public double EmbedDropout { get; init; }

    /// <summary>Dropout on attention probabilities.</summary>
    [JsonPropertyName("attention_dropout")]
    public double AttentionDropout { get; init; }

    /// <summary>Dropout before the token-classification head.</summary>
    [JsonPropertyName("classifier_dropout")]
    public double ClassifierDropout { get; init; } = 0.1;

    /// <summary>Head size.</summary>
    [JsonIgnore]
    public int HeadDim => HiddenSize / NumHeads;

    /// <summary>The attention kind of each layer: attention_layers, or attention_types expanded.</summary>
    /// <exception cref="FormatException">attention_types is not a list of [[kinds...], count] pairs.</exception>
    [JsonIgnore]
    public IReadOnlyList<string> AttentionLayers => AttentionLayersValue ?? ExpandAttentionTypes(AttentionTypes ?? []);

    /// <summary>Expands <c>[[["global", "local"], 12]]</c> into 24 layer kinds.</summary>
    /// <exception cref="FormatException">An entry is not a [[kinds...], count] pair.</exception>
    public static IReadOnlyList<string> ExpandAttentionTypes(IReadOnlyList<JsonElement> attentionTypes)
    {
        var layers = new List<string>();
        foreach (var entry in attentionTypes)
        {
            if (entry.ValueKind != JsonValueKind.Array || entry.GetArrayLength() != 2
                || entry[0].ValueKind != JsonValueKind.Array || entry[1].ValueKind != JsonValueKind.Number)
            {
                throw new FormatException($"each entry must be a pair [[kinds...], count], not {entry.GetRawText()}");
            }
            var kinds = entry[0].EnumerateArray().Select(k => k.GetString() ?? "").ToList();
            for (int i = 0; i < entry[1].GetInt32(); i++) layers.AddRange(kinds);
        }
        return layers;
    }

    /// <inheritdoc />
    protected override IEnumerable<ConfigSize> DeclaredSizes() =>
    [
        new("vocab_size", VocabSize, SizeBound.TensorDimension),
        new("hidden_size", HiddenSize, SizeBound.TensorDimension),
        new("num_layers", NumLayers, SizeBound.LayerCount),
        new("num_heads", NumHeads),
        .. (IntermediateSize is { } value ? new ConfigSize[] { new("intermediate_size", value, SizeBound.TensorDimension) } : []),
    ];

    /// <inheritdoc />
    protected override IEnumerable<(ConfigSize Heads, ConfigSize Size)> HeadDivisions() =>
    [
        (new("num_heads", NumHeads), new("hidden_size", HiddenSize)),
    ];

    /// <inheritdoc />
    public override void Validate(string source)
    {
        base.Validate(source);
        CheckActivation(ActivationFunction, "activation_function", source);
        if (AttentionTypes is null && AttentionLayersValue is null)
        {
            throw new ModelConfigException($"{source}: missing required key 'attention_types' (or 'attention_layers'): which layers use global and which local attention.");
        }
        var key = AttentionLayersValue is null ? "attention_types" : "attention_layers";
        IReadOnlyList<string> layers;
        try
        {
            layers = AttentionLayers;
        }
        catch (Exception e) when (e is FormatException or InvalidOperationException)
        {
            throw new ModelConfigException($"{source} at key '{key}': {e.Message}.", e);
        }
        if (layers.Count != NumLayers)
        {
            throw new ModelConfigException(
                $"{source} at key '{key}': it gives {layers.Count} layer kinds but num_layers is {NumLayers}.");
        }
        if (layers.FirstOrDefault(kind => kind is not ("global" or "local")) is { } unknown)
        {
            throw new ModelConfigException($"{source} at key '{key}': unknown attention kind '{unknown}'; only 'global' and 'local' exist.");
        }
        if (NumHeads <= 0 || HiddenSize % NumHeads != 0)
        {
            throw new ModelConfigException($"{source} at key 'num_heads': hidden_size {HiddenSize} is not divisible by num_heads {NumHeads}.");
        }
    }
}
