using System.Text.Json;
using System.Text.Json.Serialization;

namespace Peft.Modeling;

/// <summary>
/// The fields of a Hugging Face <c>config.json</c> that every architecture shares. Each
/// architecture derives a typed record with its own fields; keys no record models are kept in
/// <see cref="ExtensionData"/>.
/// </summary>
public record ModelConfig
{
    /// <summary>Selects the architecture plugin (<c>"gpt2"</c>, <c>"llama"</c>, ...).</summary>
    [JsonPropertyName("model_type")]
    public string ModelType { get; init; } = "";

    /// <summary>Class names of the heads the checkpoint was saved from.</summary>
    [JsonPropertyName("architectures")]
    public IReadOnlyList<string>? Architectures { get; init; }

    /// <summary>Vocabulary size.</summary>
    [JsonPropertyName("vocab_size")]
    public long VocabSize { get; init; }

    /// <summary>Padding token id, if the model has one.</summary>
    [JsonPropertyName("pad_token_id")]
    public long? PadTokenId { get; init; }

    /// <summary>Beginning-of-sequence token id.</summary>
    [JsonPropertyName("bos_token_id")]
    public long? BosTokenId { get; init; }

    /// <summary>End-of-sequence token id (generation stops on it).</summary>
    [JsonPropertyName("eos_token_id")]
    public JsonElement? EosTokenId { get; init; }

    /// <summary>Whether the output head shares the input embedding's weight.</summary>
    [JsonPropertyName("tie_word_embeddings")]
    public bool TieWordEmbeddings { get; init; } = true;

    /// <summary>Number of classification labels (from <c>num_labels</c> or <c>id2label</c>).</summary>
    [JsonPropertyName("num_labels")]
    public int? NumLabelsValue { get; init; }

    /// <summary>Label names by id, as the checkpoint declares them.</summary>
    [JsonPropertyName("id2label")]
    public IReadOnlyDictionary<string, string>? Id2Label { get; init; }

    /// <summary>The decoder's start token for encoder-decoder models.</summary>
    [JsonPropertyName("decoder_start_token_id")]
    public long? DecoderStartTokenId { get; init; }

    /// <summary>
    /// How attention is computed (transformers' <c>attn_implementation</c> argument); <see cref="AttentionImplementation.Auto"/>
    /// by default. Not part of config.json.
    /// </summary>
    [JsonIgnore]
    public AttentionImplementation AttnImplementation { get; init; } = AttentionImplementation.Auto;

    /// <summary>Keys this library does not model, kept verbatim.</summary>
    [JsonExtensionData]
    public Dictionary<string, JsonElement>? ExtensionData { get; init; }

    /// <summary>Number of labels a classification head predicts (transformers' default is 2).</summary>
    [JsonIgnore]
    public int NumLabels => NumLabelsValue ?? Id2Label?.Count ?? 2;

    /// <summary>The end-of-sequence ids (config.json allows one id or a list).</summary>
    [JsonIgnore]
    public IReadOnlyList<long> EosTokenIds => EosTokenId switch
    {
        { ValueKind: JsonValueKind.Number } one => [one.GetInt64()],
        { ValueKind: JsonValueKind.Array } many => many.EnumerateArray().Select(e => e.GetInt64()).ToArray(),
        _ => [],
    };

    /// <summary>
    /// Checks what the typed fields cannot say alone (sizes that must divide, lists that must agree,
    /// names that must exist), so that a bad config.json fails when it is read, naming the file and
    /// the key, never later inside a forward pass. <see cref="ModelConfigs.Parse{TConfig}"/> and the
    /// loader (after a caller's adjustment) call it; an architecture's config overrides it and calls
    /// the base first.
    /// </summary>
    /// <param name="source">The file, for messages.</param>
    /// <exception cref="ModelConfigException">A value cannot be used.</exception>
    public virtual void Validate(string source)
    {
        if (ConfigSizes.NonPositive(DeclaredSizes()) is { } problem) throw new ModelConfigException($"{source} {problem}");
        foreach (var (heads, size) in HeadDivisions())
        {
            if (size.Value % heads.Value != 0)
            {
                throw new ModelConfigException($"{source} at key '{heads.Key}': {size.Key} ({size.Value}) must be divisible by {heads.Key} ({heads.Value}).");
            }
        }
    }

    /// <summary>
    /// The sizes this architecture reads from config.json, each checked positive by <see cref="Validate"/> and, where it
    /// says so, bounded by the checkpoint's tensors (<see cref="CheckAgainstCheckpoint"/>) before the model is built.
    /// </summary>
    protected virtual IEnumerable<ConfigSize> DeclaredSizes() => [];

    /// <summary>Head counts and the sizes they split (hidden size by attention heads), checked after positivity.</summary>
    protected virtual IEnumerable<(ConfigSize Heads, ConfigSize Size)> HeadDivisions() => [];

    /// <summary>
    /// The sizes under transformers' common key names (<c>vocab_size</c>, <c>hidden_size</c>, <c>num_hidden_layers</c>,
    /// <c>num_attention_heads</c>, <c>intermediate_size</c>), for the architectures whose config.json uses them.
    /// </summary>
    protected static ConfigSize[] CommonSizes(long vocabSize, long hiddenSize, long layers, long heads, long intermediateSize) =>
    [
        new("vocab_size", vocabSize, SizeBound.TensorDimension),
        new("hidden_size", hiddenSize, SizeBound.TensorDimension),
        new("num_hidden_layers", layers, SizeBound.LayerCount),
        new("num_attention_heads", heads),
        new("intermediate_size", intermediateSize, SizeBound.TensorDimension),
    ];

    /// <summary><c>num_attention_heads</c> dividing <c>hidden_size</c>, under those key names.</summary>
    protected static (ConfigSize Heads, ConfigSize Size)[] CommonHeadDivision(long heads, long hiddenSize) =>
        [(new("num_attention_heads", heads), new("hidden_size", hiddenSize))];

    /// <summary>
    /// Refuses sizes the checkpoint cannot back (a vocabulary larger than any tensor, more layers than the tensor names
    /// number), from the headers alone, before the model is built: the loader calls it.
    /// </summary>
    /// <param name="source">config.json, for messages.</param>
    /// <param name="checkpointSource">The weights file or folder, for messages.</param>
    /// <param name="tensors">Every tensor's name and shape.</param>
    /// <exception cref="ModelConfigException">A size exceeds what the checkpoint holds.</exception>
    public void CheckAgainstCheckpoint(string source, string checkpointSource, IReadOnlyCollection<(string Name, IReadOnlyList<long> Shape)> tensors)
    {
        if (ConfigSizes.Unbacked(DeclaredSizes(), checkpointSource, tensors) is { } problem) throw new ModelConfigException($"{source} {problem}");
    }

    /// <summary>Refuses an activation function transformers' ACT2FN would not know.</summary>
    /// <param name="name">The config's value.</param>
    /// <param name="key">Its key in config.json (<c>hidden_act</c>, <c>activation_function</c>).</param>
    /// <param name="source">The file, for the message.</param>
    /// <exception cref="ModelConfigException">The name is unknown.</exception>
    protected static void CheckActivation(string name, string key, string source)
    {
        try
        {
            _ = Activations.Get(name);
        }
        catch (ModelConfigActivationException e)
        {
            throw new ModelConfigException($"{source} at key '{key}': {e.Message}", e);
        }
    }
}
