using System.Text.Json.Serialization;
using Peft.Modeling;

namespace Peft.Backbones.ClipText;

/// <summary>The config.json of CLIP's text encoder (transformers' <c>CLIPTextConfig</c>, <c>model_type: "clip_text_model"</c>).</summary>
public sealed record ClipTextConfig : ModelConfig
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

    /// <summary>MLP inner size.</summary>
    [JsonPropertyName("intermediate_size"), JsonRequired]
    public int IntermediateSize { get; init; }

    /// <summary>Longest sequence (learned positions).</summary>
    [JsonPropertyName("max_position_embeddings")]
    public int MaxPositionEmbeddings { get; init; } = 77;

    /// <summary>MLP activation.</summary>
    [JsonPropertyName("hidden_act")]
    public string HiddenAct { get; init; } = "quick_gelu";

    /// <summary>Layer-norm epsilon.</summary>
    [JsonPropertyName("layer_norm_eps")]
    public double LayerNormEps { get; init; } = 1e-5;

    /// <summary>Dropout on attention probabilities.</summary>
    [JsonPropertyName("attention_dropout")]
    public double AttentionDropout { get; init; }

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
    }
}
