using System.Text.Json;
using System.Text.Json.Serialization;
using Peft.Modeling;

namespace Peft.Backbones.Deberta;

/// <summary>
/// DeBERTa's config.json (transformers' <c>DebertaConfig</c>). DeBERTa-v2's config extends it
/// (<see cref="DebertaV2.DebertaV2Config"/>), so the heads and pooler serve both.
/// </summary>
public record DebertaConfig : ModelConfig
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

    /// <summary>Feed-forward activation.</summary>
    [JsonPropertyName("hidden_act")]
    public string HiddenAct { get; init; } = "gelu";

    /// <summary>Dropout on embeddings, residual branches and relative embeddings.</summary>
    [JsonPropertyName("hidden_dropout_prob")]
    public double HiddenDropoutProb { get; init; } = 0.1;

    /// <summary>Dropout on attention probabilities.</summary>
    [JsonPropertyName("attention_probs_dropout_prob")]
    public double AttentionProbsDropoutProb { get; init; } = 0.1;

    /// <summary>Absolute positions the position embedding covers (and the default relative span).</summary>
    [JsonPropertyName("max_position_embeddings")]
    public int MaxPositionEmbeddings { get; init; } = 512;

    /// <summary>Token-type (segment) vocabulary; 0 means no token-type embedding.</summary>
    [JsonPropertyName("type_vocab_size")]
    public int TypeVocabSize { get; init; }

    /// <summary>Layer-norm epsilon.</summary>
    [JsonPropertyName("layer_norm_eps")]
    public double LayerNormEps { get; init; } = 1e-7;

    /// <summary>Whether attention adds the disentangled relative-position terms.</summary>
    [JsonPropertyName("relative_attention")]
    public bool RelativeAttention { get; init; }

    /// <summary>Relative span k; below 1 means <see cref="MaxPositionEmbeddings"/>.</summary>
    [JsonPropertyName("max_relative_positions")]
    public int MaxRelativePositionsValue { get; init; } = -1;

    /// <summary>Whether absolute position embeddings are added to the token embeddings.</summary>
    [JsonPropertyName("position_biased_input")]
    public bool PositionBiasedInput { get; init; } = true;

    /// <summary>Relative terms: <c>"c2p"</c> (content to position), <c>"p2c"</c> (position to content); a list or a <c>|</c>-separated string.</summary>
    [JsonPropertyName("pos_att_type"), JsonConverter(typeof(PosAttTypeConverter))]
    public IReadOnlyList<string> PosAttType { get; init; } = [];

    /// <summary>Size of the token embedding when it differs from the hidden size (then <c>embed_proj</c> maps it).</summary>
    [JsonPropertyName("embedding_size")]
    public int? EmbeddingSizeValue { get; init; }

    /// <summary>Width of the context pooler; null means the hidden size.</summary>
    [JsonPropertyName("pooler_hidden_size")]
    public int? PoolerHiddenSizeValue { get; init; }

    /// <summary>Dropout in the context pooler.</summary>
    [JsonPropertyName("pooler_dropout")]
    public double PoolerDropout { get; init; }

    /// <summary>Activation of the context pooler.</summary>
    [JsonPropertyName("pooler_hidden_act")]
    public string PoolerHiddenAct { get; init; } = "gelu";

    /// <summary>Dropout before the sequence classifier; null means <see cref="HiddenDropoutProb"/>.</summary>
    [JsonPropertyName("cls_dropout")]
    public double? ClsDropout { get; init; }

    /// <summary>Talking-heads attention (DeBERTa v1 only): head-mixing projections before and after the softmax.</summary>
    [JsonPropertyName("talking_head")]
    public bool TalkingHead { get; init; }

    /// <summary>
    /// The sequence-classification loss: <c>"regression"</c>, <c>"single_label_classification"</c>,
    /// <c>"multi_label_classification"</c>, or null for DeBERTa's own choice by label shape.
    /// </summary>
    [JsonPropertyName("problem_type")]
    public string? ProblemType { get; init; }

    /// <summary>The relative span k in effect.</summary>
    [JsonIgnore]
    public int MaxRelativePositions => MaxRelativePositionsValue < 1 ? MaxPositionEmbeddings : MaxRelativePositionsValue;

    /// <summary>Token embedding size in effect.</summary>
    [JsonIgnore]
    public int EmbeddingSize => EmbeddingSizeValue ?? HiddenSize;

    /// <summary>Pooler width in effect.</summary>
    [JsonIgnore]
    public int PoolerHiddenSize => PoolerHiddenSizeValue ?? HiddenSize;

    /// <summary>Head size.</summary>
    [JsonIgnore]
    public virtual int HeadDim => HiddenSize / NumAttentionHeads;

    /// <summary>Whether <see cref="PosAttType"/> names <paramref name="kind"/>.</summary>
    public bool HasPosAtt(string kind) => PosAttType.Contains(kind);

    /// <inheritdoc />
    protected override IEnumerable<ConfigSize> DeclaredSizes() =>
    [
        .. CommonSizes(VocabSize, HiddenSize, NumHiddenLayers, NumAttentionHeads, IntermediateSize),
        .. (EmbeddingSizeValue is { } value ? new ConfigSize[] { new("embedding_size", value, SizeBound.TensorDimension) } : []),
    ];

    /// <inheritdoc />
    protected override IEnumerable<(ConfigSize Heads, ConfigSize Size)> HeadDivisions() => CommonHeadDivision(NumAttentionHeads, HiddenSize);

    /// <inheritdoc />
    public override void Validate(string source)
    {
        base.Validate(source);
        CheckActivation(HiddenAct, "hidden_act", source);
    }
}

/// <summary>Reads <c>pos_att_type</c> as transformers does: null, a list, or a <c>"c2p|p2c"</c> string (lower-cased, trimmed).</summary>
internal sealed class PosAttTypeConverter : JsonConverter<IReadOnlyList<string>>
{
    public override bool HandleNull => true;

    public override IReadOnlyList<string> Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
    {
        switch (reader.TokenType)
        {
            case JsonTokenType.Null:
                return [];
            case JsonTokenType.String:
                return reader.GetString()!.ToLowerInvariant().Split('|').Select(s => s.Trim()).ToArray();
            case JsonTokenType.StartArray:
                var items = new List<string>();
                while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
                {
                    if (reader.TokenType != JsonTokenType.String) throw new JsonException("pos_att_type must list strings.");
                    items.Add(reader.GetString()!);
                }
                return items;
            default:
                throw new JsonException("pos_att_type must be null, a string or a list of strings.");
        }
    }

    public override void Write(Utf8JsonWriter writer, IReadOnlyList<string> value, JsonSerializerOptions options)
    {
        writer.WriteStartArray();
        foreach (var item in value) writer.WriteStringValue(item);
        writer.WriteEndArray();
    }
}
