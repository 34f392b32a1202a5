using System.Text.Json.Serialization;
using Peft.Modeling;

namespace Peft.Backbones.Swin;

/// <summary>Swin Transformer's config.json (transformers' <c>SwinConfig</c>); the lists hold one entry per stage.</summary>
public sealed record SwinConfig : ModelConfig
{
    /// <summary>Side of the (square) images the model was made for.</summary>
    [JsonPropertyName("image_size")]
    public int ImageSize { get; init; } = 224;

    /// <summary>Side of a (square) patch.</summary>
    [JsonPropertyName("patch_size")]
    public int PatchSize { get; init; } = 4;

    /// <summary>Image channels.</summary>
    [JsonPropertyName("num_channels")]
    public int NumChannels { get; init; } = 3;

    /// <summary>Channels of the first stage; each later stage doubles them.</summary>
    [JsonPropertyName("embed_dim")]
    public int EmbedDim { get; init; } = 96;

    /// <summary>Blocks per stage.</summary>
    [JsonPropertyName("depths")]
    public IReadOnlyList<int> Depths { get; init; } = [2, 2, 6, 2];

    /// <summary>Attention heads per stage.</summary>
    [JsonPropertyName("num_heads")]
    public IReadOnlyList<int> NumHeads { get; init; } = [3, 6, 12, 24];

    /// <summary>Side of an attention window, in patches.</summary>
    [JsonPropertyName("window_size")]
    public int WindowSize { get; init; } = 7;

    /// <summary>MLP expansion.</summary>
    [JsonPropertyName("mlp_ratio")]
    public double MlpRatio { get; init; } = 4;

    /// <summary>Whether the query, key and value projections have biases.</summary>
    [JsonPropertyName("qkv_bias")]
    public bool QkvBias { get; init; } = true;

    /// <summary>Dropout on hidden states.</summary>
    [JsonPropertyName("hidden_dropout_prob")]
    public double HiddenDropoutProb { get; init; }

    /// <summary>Dropout on attention probabilities.</summary>
    [JsonPropertyName("attention_probs_dropout_prob")]
    public double AttentionProbsDropoutProb { get; init; }

    /// <summary>Stochastic depth, rising linearly over all blocks up to this rate.</summary>
    [JsonPropertyName("drop_path_rate")]
    public double DropPathRate { get; init; } = 0.1;

    /// <summary>MLP activation.</summary>
    [JsonPropertyName("hidden_act")]
    public string HiddenAct { get; init; } = "gelu";

    /// <summary>Whether learned absolute position embeddings are added to the patches.</summary>
    [JsonPropertyName("use_absolute_embeddings")]
    public bool UseAbsoluteEmbeddings { get; init; }

    /// <summary>Epsilon of the blocks' and the final LayerNorms.</summary>
    [JsonPropertyName("layer_norm_eps")]
    public double LayerNormEps { get; init; } = 1e-5;

    /// <summary>Channels of stage <paramref name="stage"/>.</summary>
    public int StageDim(int stage) => EmbedDim << stage;

    /// <summary>Channels of the last stage (what the classifier sees).</summary>
    [JsonIgnore]
    public int NumFeatures => StageDim(Depths.Count - 1);

    /// <inheritdoc />
    /// <remarks>
    /// The lists are bounded entry by entry: a stage's depth by the block numbers in the tensor names, its heads by the
    /// relative-position tables, and the window by its table's (2w − 1)² rows, since the index buffer built from it
    /// holds w⁴ entries.
    /// </remarks>
    protected override IEnumerable<ConfigSize> DeclaredSizes()
    {
        yield return new("num_channels", NumChannels, SizeBound.TensorDimension);
        yield return new("embed_dim", EmbedDim, SizeBound.TensorDimension);
        yield return new("image_size", ImageSize);
        yield return new("patch_size", PatchSize);
        yield return new("window_size", WindowSize);
        yield return new("window_size (its (2w − 1)² relative-position rows)", (2L * WindowSize - 1) * (2L * WindowSize - 1), SizeBound.TensorDimension);
        yield return new("depths (stages)", Depths.Count, SizeBound.LayerCount);
        for (int i = 0; i < Depths.Count; i++) yield return new($"depths[{i}]", Depths[i], SizeBound.LayerCount);
        for (int i = 0; i < NumHeads.Count; i++) yield return new($"num_heads[{i}]", NumHeads[i], SizeBound.TensorDimension);
        // The last stage's channels, computed without overflow (a shift by the stage count would wrap).
        yield return new("embed_dim · 2^(stages − 1)", (long)EmbedDim << Math.Clamp(Depths.Count - 1, 0, 31), SizeBound.TensorDimension);
    }

    /// <inheritdoc />
    public override void Validate(string source)
    {
        base.Validate(source);
        CheckActivation(HiddenAct, "hidden_act", source);
        if (NumHeads.Count != Depths.Count)
        {
            throw new ModelConfigException($"{source} at key 'num_heads': {NumHeads.Count} entries for {Depths.Count} stages in 'depths'.");
        }
        for (int i = 0; i < Depths.Count; i++)
        {
            if (StageDim(i) % NumHeads[i] != 0)
            {
                throw new ModelConfigException($"{source}: stage {i}'s {StageDim(i)} channels are not a multiple of its {NumHeads[i]} heads.");
            }
        }
    }
}
