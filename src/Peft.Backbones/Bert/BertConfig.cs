using System.Text.Json.Serialization;
using Peft.Modeling;

namespace Peft.Backbones.Bert;

/// <summary>BERT's config.json (transformers' <c>BertConfig</c>).</summary>
public record BertConfig : ModelConfig
{
    /// <summary>Hidden size.</summary>
    [JsonPropertyName("hidden_size"), JsonRequired]
    public int HiddenSize { get; init; }

    /// <summary>Encoder layers.</summary>
    [JsonPropertyName("num_hidden_layers"), JsonRequired]
    public int NumHiddenLayers { get; init; }

    /// <summary>Attention heads per layer.</summary>
    [JsonPropertyName("num_attention_heads"), JsonRequired]
    public int NumAttentionHeads { get; init; }

    /// <summary>Feed-forward inner size.</summary>
    [JsonPropertyName("intermediate_size"), JsonRequired]
    public int IntermediateSize { get; init; }

    /// <summary>Longest sequence (learned positions).</summary>
    [JsonPropertyName("max_position_embeddings")]
    public int MaxPositionEmbeddings { get; init; } = 512;

    /// <summary>Segment vocabulary size.</summary>
    [JsonPropertyName("type_vocab_size")]
    public int TypeVocabSize { get; init; } = 2;

    /// <summary>Feed-forward activation.</summary>
    [JsonPropertyName("hidden_act")]
    public string HiddenAct { get; init; } = "gelu";

    /// <summary>Layer-norm epsilon.</summary>
    [JsonPropertyName("layer_norm_eps")]
    public double LayerNormEps { get; init; } = 1e-12;

    /// <summary>Dropout on hidden states.</summary>
    [JsonPropertyName("hidden_dropout_prob")]
    public double HiddenDropoutProb { get; init; } = 0.1;

    /// <summary>Dropout on attention probabilities.</summary>
    [JsonPropertyName("attention_probs_dropout_prob")]
    public double AttentionProbsDropoutProb { get; init; } = 0.1;

    /// <summary>Dropout before classification heads; null means hidden_dropout_prob.</summary>
    [JsonPropertyName("classifier_dropout")]
    public double? ClassifierDropout { get; init; }

    /// <summary>"absolute" is the only kind supported.</summary>
    [JsonPropertyName("position_embedding_type")]
    public string PositionEmbeddingType { get; init; } = "absolute";

    /// <summary>Head size.</summary>
    [JsonIgnore]
    public int HeadDim => HiddenSize / NumAttentionHeads;

    /// <inheritdoc />
    protected override IEnumerable<ConfigSize> DeclaredSizes() => CommonSizes(VocabSize, HiddenSize, NumHiddenLayers, NumAttentionHeads, IntermediateSize);

    /// <inheritdoc />
    protected override IEnumerable<(ConfigSize Heads, ConfigSize Size)> HeadDivisions() => CommonHeadDivision(NumAttentionHeads, HiddenSize);

    /// <inheritdoc />
    public override void Validate(string source)
    {
        base.Validate(source);
        CheckActivation(HiddenAct, "hidden_act", source);
        if (PositionEmbeddingType != "absolute")
        {
            throw new ModelConfigException($"{source} at key 'position_embedding_type': '{PositionEmbeddingType}' is not supported; only 'absolute'.");
        }
    }
}
