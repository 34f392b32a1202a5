// BERT encoder and heads, following transformers' models/bert/modeling_bert.py.
using Peft.Modeling;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Peft.Backbones.Bert;

/// <summary>The encoder's layer stack (<c>encoder.layer</c>).</summary>
public sealed class BertEncoder : nn.Module, IGradientCheckpointing
{
    private readonly ModuleList<BertLayer> layer;

    /// <summary>num_hidden_layers layers.</summary>
    public BertEncoder(BertConfig config) : base("BertEncoder")
    {
        layer = nn.ModuleList(Enumerable.Range(0, config.NumHiddenLayers).Select(_ => new BertLayer(config)).ToArray());
        RegisterComponents();
    }

    /// <summary>(B, T, C) → (B, T, C).</summary>
    public Tensor forward(Tensor hidden, Tensor? mask, KeyValueCache? cache)
    {
        for (int i = 0; i < layer.Count; i++)
        {
            var (block, index) = (layer[i], i);
            hidden = GradientCheckpoint.Run(GradientCheckpointing, training, (x, e) => block.forward(x, e[0], cache, index), hidden, cache, mask);
        }
        return hidden;
    }

    /// <inheritdoc />
    public bool GradientCheckpointing { get; set; }
}

/// <summary>tanh(dense(first token)): the sentence representation of the classification head.</summary>
[TargetModules("dense")]
public sealed partial class BertPooler : nn.Module
{
    private nn.Module<Tensor, Tensor> dense;

    /// <summary>A pooler sized by the config.</summary>
    public BertPooler(BertConfig config) : base("BertPooler")
    {
        dense = nn.Linear(config.HiddenSize, config.HiddenSize);
        RegisterComponents();
    }

    /// <summary>(B, T, C) → (B, C).</summary>
    public Tensor forward(Tensor hidden) => dense.call(hidden[.., 0]).tanh();
}

/// <summary>The bare BERT encoder (<c>bert</c>, <c>roberta</c> or <c>layoutlm</c> in every head).</summary>
public sealed class BertModel : nn.Module
{
    private readonly nn.Module embeddings;
    private readonly BertEncoder encoder;
    private readonly BertPooler? pooler;

    /// <summary>A randomly initialised encoder over <paramref name="embeddingBlock"/>, with the pooler when <paramref name="addPoolingLayer"/>.</summary>
    public BertModel(BertConfig config, IBertEmbeddings embeddingBlock, bool addPoolingLayer = true) : base("BertModel")
    {
        Config = config;
        embeddings = (nn.Module)embeddingBlock;
        encoder = new BertEncoder(config);
        pooler = addPoolingLayer ? new BertPooler(config) : null;
        RegisterComponents();
    }

    /// <summary>The config.</summary>
    public BertConfig Config { get; }

    /// <summary>The token embedding (possibly wrapped by an adapter).</summary>
    public nn.Module<Tensor, Tensor> WordEmbeddings => EmbeddingBlock.WordEmbeddings;

    // Not a field: TorchSharp would register it a second time.
    private IBertEmbeddings EmbeddingBlock => (IBertEmbeddings)embeddings;

    /// <summary>Runs the encoder: the last hidden state (B, T, C) and the pooled output (B, C) when there is a pooler.</summary>
    public (Tensor Hidden, Tensor? Pooled) forward(ModelInputs inputs)
    {
        using var scope = torch.NewDisposeScope();
        var cache = inputs.PastKeyValues;
        var past = cache?.Length ?? 0;
        var hidden = EmbeddingBlock.forward(inputs, past);
        var mask = AttentionMasks.Padding(inputs.AttentionMask, hidden.dtype);    // (B, 1, 1, P + T)
        hidden = encoder.forward(hidden, mask, cache);
        var pooled = pooler?.forward(hidden);
        return (hidden.MoveToOuterDisposeScope(), pooled?.MoveToOuterDisposeScope());
    }
}

/// <summary>
/// Shared plumbing of the BERT-family heads: the encoder, registered under the family's name
/// (<c>bert</c>, <c>roberta</c>, <c>layoutlm</c>) so checkpoint keys match.
/// </summary>
public abstract class BertPreTrainedModel : PreTrainedModel
{
    /// <summary>Builds the encoder for a head and registers it as <paramref name="encoderName"/>.</summary>
    protected BertPreTrainedModel(string name, BertConfig config, TaskType task, string encoderName, IBertEmbeddings embeddings, bool addPoolingLayer)
        : base(name, config, task)
    {
        BaseModelPrefix = encoderName;
        RegisterBaseModel(encoderName, new BertModel(config, embeddings, addPoolingLayer));
    }

    /// <summary>The encoder.</summary>
    protected BertModel Encoder => Registered<BertModel>(BaseModelPrefix);

    /// <summary>The config.</summary>
    public BertConfig Bert => Encoder.Config;

    /// <inheritdoc />
    public override nn.Module<Tensor, Tensor> InputEmbeddings => Encoder.WordEmbeddings;

    /// <inheritdoc />
    public override string BaseModelPrefix { get; }

    /// <inheritdoc />
    public override PromptLayout PromptLayout => new(Bert.NumHiddenLayers, Bert.NumAttentionHeads, Bert.HeadDim, Bert.HiddenSize);

    /// <summary>Dropout before a classifier: classifier_dropout, else hidden_dropout_prob.</summary>
    protected double ClassifierDropout => Bert.ClassifierDropout ?? Bert.HiddenDropoutProb;
}

/// <summary>BERT classifying a sequence from its pooled first token.</summary>
[TargetModules("classifier")]
public sealed partial class BertForSequenceClassification : BertPreTrainedModel
{
    private readonly Dropout dropout;
    private nn.Module<Tensor, Tensor> classifier;

    /// <summary>A randomly initialised model with <c>num_labels</c> outputs.</summary>
    public BertForSequenceClassification(BertConfig config)
        : base("BertForSequenceClassification", config, TaskType.SequenceClassification, "bert", new BertEmbeddings(config), addPoolingLayer: true)
    {
        dropout = nn.Dropout(ClassifierDropout);
        classifier = nn.Linear(config.HiddenSize, config.NumLabels);
        RegisterComponents();
    }

    /// <inheritdoc />
    public override ModelOutputs forward(ModelInputs inputs)
    {
        using var scope = torch.NewDisposeScope();
        var (_, pooled) = Encoder.forward(inputs);
        var logits = classifier.call(dropout.call(pooled!));
        var loss = inputs.Labels is null ? null : Losses.SequenceClassification(logits, inputs.Labels, Config.NumLabels);
        return new ModelOutputs { Logits = logits.MoveToOuterDisposeScope(), Loss = loss?.MoveToOuterDisposeScope() };
    }
}

/// <summary>A BERT-family encoder labelling every token.</summary>
[TargetModules("classifier")]
public sealed partial class BertForTokenClassification : BertPreTrainedModel
{
    private readonly Dropout dropout;
    private nn.Module<Tensor, Tensor> classifier;

    /// <summary>BERT with a token classifier and <c>num_labels</c> outputs.</summary>
    public BertForTokenClassification(BertConfig config) : this(config, "bert", new BertEmbeddings(config), addPoolingLayer: false)
    {
    }

    /// <summary>A BERT-family encoder (registered as <paramref name="encoderName"/>) with a token classifier.</summary>
    public BertForTokenClassification(BertConfig config, string encoderName, IBertEmbeddings embeddings, bool addPoolingLayer)
        : base("BertForTokenClassification", config, TaskType.TokenClassification, encoderName, embeddings, addPoolingLayer)
    {
        dropout = nn.Dropout(ClassifierDropout);
        classifier = nn.Linear(config.HiddenSize, config.NumLabels);
        RegisterComponents();
    }

    /// <inheritdoc />
    public override ModelOutputs forward(ModelInputs inputs)
    {
        using var scope = torch.NewDisposeScope();
        var (hidden, _) = Encoder.forward(inputs);
        var logits = classifier.call(dropout.call(hidden));
        var loss = inputs.Labels is null ? null : Losses.TokenClassification(logits, inputs.Labels);
        return new ModelOutputs { Logits = logits.MoveToOuterDisposeScope(), Loss = loss?.MoveToOuterDisposeScope() };
    }
}

/// <summary>A BERT-family encoder's last hidden state as features (what sentence-transformers pool).</summary>
public sealed class BertForFeatureExtraction : BertPreTrainedModel
{
    /// <summary>BERT with its pooler.</summary>
    public BertForFeatureExtraction(BertConfig config) : this(config, "bert", new BertEmbeddings(config))
    {
    }

    /// <summary>A BERT-family encoder (registered as <paramref name="encoderName"/>) with its pooler.</summary>
    public BertForFeatureExtraction(BertConfig config, string encoderName, IBertEmbeddings embeddings)
        : base("BertModel", config, TaskType.FeatureExtraction, encoderName, embeddings, addPoolingLayer: true)
    {
        RegisterComponents();
    }

    /// <inheritdoc />
    public override ModelOutputs forward(ModelInputs inputs)
    {
        var (hidden, pooled) = Encoder.forward(inputs);
        pooled?.Dispose();
        return new ModelOutputs { Logits = hidden };
    }
}
