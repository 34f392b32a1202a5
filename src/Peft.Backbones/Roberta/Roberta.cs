// RoBERTa: BERT's encoder with padding-aware positions and its own classification head,
// following transformers' models/roberta/modeling_roberta.py.
using System.Text.Json;
using Peft.Backbones.Bert;
using Peft.Layers;
using Peft.Modeling;
using Peft.Plugins;
using Peft.Tuners;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Peft.Backbones.Roberta;

/// <summary>
/// BERT's embeddings, but positions count only real tokens and start after the padding index
/// (position = padding_idx + number of non-padding tokens so far), and the position table has a padding row.
/// </summary>
[TargetModules("word_embeddings", "token_type_embeddings", "LayerNorm", "position_embeddings")]
public sealed partial class RobertaEmbeddings : nn.Module, IBertEmbeddings
{
    private nn.Module<Tensor, Tensor> word_embeddings;
    private nn.Module<Tensor, Tensor> token_type_embeddings;
    private nn.Module<Tensor, Tensor> LayerNorm;
    private readonly Dropout dropout;
    private nn.Module<Tensor, Tensor> position_embeddings;
    private readonly long _paddingIndex;

    /// <summary>Embeddings sized by the config.</summary>
    public RobertaEmbeddings(BertConfig config) : base("RobertaEmbeddings")
    {
        _paddingIndex = config.PadTokenId ?? 1;
        word_embeddings = Embeddings.Create(config.VocabSize, config.HiddenSize, _paddingIndex);
        token_type_embeddings = Peft.Layers.Embeddings.Create(config.TypeVocabSize, config.HiddenSize);
        LayerNorm = nn.LayerNorm(config.HiddenSize, config.LayerNormEps);
        dropout = nn.Dropout(config.HiddenDropoutProb);
        position_embeddings = Embeddings.Create(config.MaxPositionEmbeddings, config.HiddenSize, _paddingIndex);
        RegisterComponents();
    }

    /// <inheritdoc />
    public nn.Module<Tensor, Tensor> WordEmbeddings => word_embeddings;

    /// <inheritdoc />
    public Tensor forward(ModelInputs inputs, long pastLength)
    {
        using var scope = torch.NewDisposeScope();
        var embeds = inputs.InputsEmbeds ?? word_embeddings.call(inputs.InputIds ?? throw new ArgumentException("RoBERTa needs input_ids or inputs_embeds."));
        var (batch, length) = (embeds.shape[0], embeds.shape[1]);
        Tensor positions;
        if (inputs.PositionIds is { } given) positions = given;
        else if (inputs.InputIds is { } ids && inputs.InputsEmbeds is null)
        {
            var real = ids.ne(_paddingIndex).to(ScalarType.Int64);
            positions = (real.cumsum(1) + pastLength) * real + _paddingIndex;
        }
        else
        {
            // No ids to find padding in: every position is real.
            positions = torch.arange(_paddingIndex + 1 + pastLength, _paddingIndex + 1 + pastLength + length, device: embeds.device).unsqueeze(0);
        }
        var tokenTypes = inputs.TokenTypeIds ?? torch.zeros(batch, length, ScalarType.Int64, embeds.device);
        var hidden = embeds + token_type_embeddings.call(tokenTypes) + position_embeddings.call(positions);
        return dropout.call(LayerNorm.call(hidden)).MoveToOuterDisposeScope();
    }
}

/// <summary>dropout → dense → tanh → dropout → out_proj on the first token (RoBERTa's <c>classifier</c>).</summary>
[TargetModules("dense", "out_proj")]
public sealed partial class RobertaClassificationHead : nn.Module<Tensor, Tensor>, ICloneableModule
{
    private nn.Module<Tensor, Tensor> dense;
    private readonly Dropout dropout;
    private nn.Module<Tensor, Tensor> out_proj;
    private readonly BertConfig _config;

    /// <summary>A head with <c>num_labels</c> outputs.</summary>
    public RobertaClassificationHead(BertConfig config) : base("RobertaClassificationHead")
    {
        _config = config;
        dense = nn.Linear(config.HiddenSize, config.HiddenSize);
        dropout = nn.Dropout(config.ClassifierDropout ?? config.HiddenDropoutProb);
        out_proj = nn.Linear(config.HiddenSize, config.NumLabels);
        RegisterComponents();
    }

    /// <summary>(B, T, C) → (B, labels).</summary>
    public override Tensor forward(Tensor features)
    {
        using var scope = torch.NewDisposeScope();
        var x = dropout.call(features[.., 0]);
        x = dropout.call(dense.call(x).tanh());
        return out_proj.call(x).MoveToOuterDisposeScope();
    }

    /// <inheritdoc />
    public nn.Module<Tensor, Tensor> Clone()
    {
        var copy = new RobertaClassificationHead(_config);
        using var noGrad = torch.no_grad();
        var source = state_dict();
        foreach (var (name, tensor) in copy.state_dict()) tensor.copy_(source[name]);
        return ModuleCloner.PlacedLike(copy, this);
    }
}

/// <summary>RoBERTa classifying a sequence from its first token (no pooler).</summary>
[TargetModules("classifier")]
public sealed partial class RobertaForSequenceClassification : BertPreTrainedModel
{
    private nn.Module<Tensor, Tensor> classifier;

    /// <summary>A randomly initialised model with <c>num_labels</c> outputs.</summary>
    public RobertaForSequenceClassification(BertConfig config)
        : base("RobertaForSequenceClassification", config, TaskType.SequenceClassification, "roberta", new RobertaEmbeddings(config), addPoolingLayer: false)
    {
        classifier = new RobertaClassificationHead(config);
        RegisterComponents();
    }

    /// <inheritdoc />
    public override ModelOutputs forward(ModelInputs inputs)
    {
        using var scope = torch.NewDisposeScope();
        var (hidden, _) = Encoder.forward(inputs);
        var logits = classifier.call(hidden);
        var loss = inputs.Labels is null ? null : Losses.SequenceClassification(logits, inputs.Labels, Config.NumLabels);
        return new ModelOutputs { Logits = logits.MoveToOuterDisposeScope(), Loss = loss?.MoveToOuterDisposeScope() };
    }
}

/// <summary>The RoBERTa architecture plugin (<c>model_type: "roberta"</c>).</summary>
[DefaultTargets("LORA", "query", "value")]
[DefaultTargets("IA3", "key", "value", "output.dense")]
[DefaultTargets("IA3_FEEDFORWARD", "output.dense")]
[DefaultTargets("ADALORA", "query", "key", "value", "dense")]
public sealed partial class RobertaArchitecture : IArchitecture
{
    /// <inheritdoc />
    public string ModelType => "roberta";

    /// <inheritdoc />
    public IReadOnlyList<TaskType> SupportedTasks { get; } =
        [TaskType.SequenceClassification, TaskType.TokenClassification, TaskType.FeatureExtraction];

    /// <inheritdoc />
    public ModelConfig ParseConfig(JsonElement json, string source) => ModelConfigs.Parse<BertConfig>(json, source);

    /// <inheritdoc />
    public PreTrainedModel Build(ModelConfig config, TaskType task)
    {
        var roberta = (BertConfig)config;
        if (task == TaskType.SequenceClassification) return new RobertaForSequenceClassification(roberta);
        if (task == TaskType.TokenClassification) return new BertForTokenClassification(roberta, "roberta", new RobertaEmbeddings(roberta), addPoolingLayer: false);
        if (task == TaskType.FeatureExtraction) return new BertForFeatureExtraction(roberta, "roberta", new RobertaEmbeddings(roberta));
        throw new NotSupportedException($"RoBERTa has no head for {task}; supported: {string.Join(", ", SupportedTasks)}.");
    }
}
