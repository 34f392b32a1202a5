// LayoutLM: BERT's encoder with 2-D position embeddings from token bounding boxes,
// following transformers' models/layoutlm/modeling_layoutlm.py.
using System.Text.Json;
using System.Text.Json.Serialization;
using Peft.Backbones.Bert;
using Peft.Layers;
using Peft.Modeling;
using Peft.Plugins;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Peft.Backbones.LayoutLm;

/// <summary>LayoutLM's config.json: BERT's plus the 2-D position range.</summary>
public sealed record LayoutLmConfig : BertConfig
{
    /// <summary>Coordinates (0–1000 in the original) index tables of this size.</summary>
    [JsonPropertyName("max_2d_position_embeddings")]
    public int Max2dPositionEmbeddings { get; init; } = 1024;
}

// Copied from Bert/BertLayers.cs (BertEmbeddings) with the box embeddings added, as transformers' LayoutLMEmbeddings.
/// <summary>BERT's embeddings plus the box's left, upper, right, lower, height and width embeddings.</summary>
[TargetModules("word_embeddings", "LayerNorm")]
public sealed partial class LayoutLmEmbeddings : nn.Module, IBertEmbeddings
{
    private nn.Module<Tensor, Tensor> word_embeddings;
    private readonly Embedding position_embeddings;
    private readonly Embedding x_position_embeddings;
    private readonly Embedding y_position_embeddings;
    private readonly Embedding h_position_embeddings;
    private readonly Embedding w_position_embeddings;
    private readonly Embedding token_type_embeddings;
    private nn.Module<Tensor, Tensor> LayerNorm;
    private readonly Dropout dropout;

    /// <summary>Embeddings sized by the config.</summary>
    public LayoutLmEmbeddings(LayoutLmConfig config) : base("LayoutLMEmbeddings")
    {
        word_embeddings = Embeddings.Create(config.VocabSize, config.HiddenSize, config.PadTokenId);
        position_embeddings = Peft.Layers.Embeddings.Create(config.MaxPositionEmbeddings, config.HiddenSize);
        x_position_embeddings = Peft.Layers.Embeddings.Create(config.Max2dPositionEmbeddings, config.HiddenSize);
        y_position_embeddings = Peft.Layers.Embeddings.Create(config.Max2dPositionEmbeddings, config.HiddenSize);
        h_position_embeddings = Peft.Layers.Embeddings.Create(config.Max2dPositionEmbeddings, config.HiddenSize);
        w_position_embeddings = Peft.Layers.Embeddings.Create(config.Max2dPositionEmbeddings, config.HiddenSize);
        token_type_embeddings = Peft.Layers.Embeddings.Create(config.TypeVocabSize, config.HiddenSize);
        LayerNorm = nn.LayerNorm(config.HiddenSize, config.LayerNormEps);
        dropout = nn.Dropout(config.HiddenDropoutProb);
        RegisterComponents();
    }

    /// <inheritdoc />
    public nn.Module<Tensor, Tensor> WordEmbeddings => word_embeddings;

    /// <inheritdoc />
    public Tensor forward(ModelInputs inputs, long pastLength)
    {
        using var scope = torch.NewDisposeScope();
        var embeds = inputs.InputsEmbeds ?? word_embeddings.call(inputs.InputIds ?? throw new ArgumentException("LayoutLM needs input_ids or inputs_embeds."));
        var (batch, length) = (embeds.shape[0], embeds.shape[1]);
        var positions = inputs.PositionIds ?? torch.arange(pastLength, pastLength + length, device: embeds.device).unsqueeze(0);
        var box = inputs.Bbox ?? torch.zeros(batch, length, 4, ScalarType.Int64, embeds.device);   // (B, T, [x0, y0, x1, y1])
        var (left, upper, right, lower) = (box[.., .., 0], box[.., .., 1], box[.., .., 2], box[.., .., 3]);
        var tokenTypes = inputs.TokenTypeIds ?? torch.zeros(batch, length, ScalarType.Int64, embeds.device);
        var hidden = embeds
            + position_embeddings.call(positions)
            + x_position_embeddings.call(left) + y_position_embeddings.call(upper)
            + x_position_embeddings.call(right) + y_position_embeddings.call(lower)
            + h_position_embeddings.call(lower - upper) + w_position_embeddings.call(right - left)
            + token_type_embeddings.call(tokenTypes);
        return dropout.call(LayerNorm.call(hidden)).MoveToOuterDisposeScope();
    }
}

/// <summary>The LayoutLM architecture plugin (<c>model_type: "layoutlm"</c>).</summary>
[DefaultTargets("LORA", "query", "value")]
public sealed partial class LayoutLmArchitecture : IArchitecture
{
    /// <inheritdoc />
    public string ModelType => "layoutlm";

    /// <inheritdoc />
    public IReadOnlyList<TaskType> SupportedTasks { get; } = [TaskType.TokenClassification, TaskType.FeatureExtraction];

    /// <inheritdoc />
    public ModelConfig ParseConfig(JsonElement json, string source) => ModelConfigs.Parse<LayoutLmConfig>(json, source);

    /// <inheritdoc />
    public PreTrainedModel Build(ModelConfig config, TaskType task)
    {
        var layout = (LayoutLmConfig)config;
        // LayoutLM's token classifier keeps the pooler (its checkpoints carry layoutlm.pooler.*).
        if (task == TaskType.TokenClassification) return new BertForTokenClassification(layout, "layoutlm", new LayoutLmEmbeddings(layout), addPoolingLayer: true);
        if (task == TaskType.FeatureExtraction) return new BertForFeatureExtraction(layout, "layoutlm", new LayoutLmEmbeddings(layout));
        throw new NotSupportedException($"LayoutLM has no head for {task}; supported: {string.Join(", ", SupportedTasks)}.");
    }
}
