// BERT encoder and heads, following transformers' models/bert/modeling_bert.py.
using Peft.Modeling;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Peft.Backbones.Bert;

/// <summary>The encoder's layer stack (<c>encoder.layer</c>).</summary>
public sealed class BertEncoder : nn.Module
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
        for (int i = 0; i < layer.Count; i++) hidden = layer[i].forward(hidden, mask, cache, i);
        return hidden;
    }
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

/// <summary>The bare BERT encoder (<c>bert</c> in every head).</summary>
public sealed class BertModel : nn.Module
{
    private readonly BertEmbeddings embeddings;
    private readonly BertEncoder encoder;
    private readonly BertPooler? pooler;

    /// <summary>A randomly initialised encoder, with the pooler when <paramref name="addPoolingLayer"/>.</summary>
    public BertModel(BertConfig config, bool addPoolingLayer = true) : base("BertModel")
    {
        Config = config;
        embeddings = new BertEmbeddings(config);
        encoder = new BertEncoder(config);
        pooler = addPoolingLayer ? new BertPooler(config) : null;
        RegisterComponents();
    }

    /// <summary>The config.</summary>
    public BertConfig Config { get; }

    /// <summary>The token embedding (possibly wrapped by an adapter).</summary>
    public nn.Module<Tensor, Tensor> WordEmbeddings => embeddings.WordEmbeddings;

    /// <summary>Runs the encoder: the last hidden state (B, T, C) and the pooled output (B, C) when there is a pooler.</summary>
    public (Tensor Hidden, Tensor? Pooled) forward(ModelInputs inputs)
    {
        using var scope = torch.NewDisposeScope();
        var cache = inputs.PastKeyValues;
        var past = cache?.Length ?? 0;
        var hidden = embeddings.forward(inputs, past);
        var mask = AttentionMasks.Padding(inputs.AttentionMask, hidden.dtype);    // (B, 1, 1, P + T)
        hidden = encoder.forward(hidden, mask, cache);
        var pooled = pooler?.forward(hidden);
        return (hidden.MoveToOuterDisposeScope(), pooled?.MoveToOuterDisposeScope());
    }
}

/// <summary>Shared plumbing of the BERT heads: the <c>bert</c> encoder.</summary>
public abstract class BertPreTrainedModel : PreTrainedModel
{
    /// <summary>Builds the encoder for a head.</summary>
    protected BertPreTrainedModel(string name, BertConfig config, TaskType task, bool addPoolingLayer) : base(name, config, task)
    {
        bert = new BertModel(config, addPoolingLayer);
    }

#pragma warning disable IDE1006 // Hugging Face's module name
    /// <summary>The encoder, registered as <c>bert</c>.</summary>
    protected readonly BertModel bert;
#pragma warning restore IDE1006

    /// <summary>The config.</summary>
    public BertConfig Bert => bert.Config;

    /// <inheritdoc />
    public override nn.Module<Tensor, Tensor> InputEmbeddings => bert.WordEmbeddings;

    /// <inheritdoc />
    public override string BaseModelPrefix => "bert";

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
    public BertForSequenceClassification(BertConfig config) : base("BertForSequenceClassification", config, TaskType.SequenceClassification, addPoolingLayer: true)
    {
        dropout = nn.Dropout(ClassifierDropout);
        classifier = nn.Linear(config.HiddenSize, config.NumLabels);
        RegisterComponents();
    }

    /// <inheritdoc />
    public override ModelOutputs forward(ModelInputs inputs)
    {
        using var scope = torch.NewDisposeScope();
        var (_, pooled) = bert.forward(inputs);
        var logits = classifier.call(dropout.call(pooled!));
        var loss = inputs.Labels is null ? null : Losses.SequenceClassification(logits, inputs.Labels, Config.NumLabels);
        return new ModelOutputs { Logits = logits.MoveToOuterDisposeScope(), Loss = loss?.MoveToOuterDisposeScope() };
    }
}

/// <summary>BERT labelling every token.</summary>
[TargetModules("classifier")]
public sealed partial class BertForTokenClassification : BertPreTrainedModel
{
    private readonly Dropout dropout;
    private nn.Module<Tensor, Tensor> classifier;

    /// <summary>A randomly initialised model with <c>num_labels</c> outputs.</summary>
    public BertForTokenClassification(BertConfig config) : base("BertForTokenClassification", config, TaskType.TokenClassification, addPoolingLayer: false)
    {
        dropout = nn.Dropout(ClassifierDropout);
        classifier = nn.Linear(config.HiddenSize, config.NumLabels);
        RegisterComponents();
    }

    /// <inheritdoc />
    public override ModelOutputs forward(ModelInputs inputs)
    {
        using var scope = torch.NewDisposeScope();
        var (hidden, _) = bert.forward(inputs);
        var logits = classifier.call(dropout.call(hidden));
        var loss = inputs.Labels is null ? null : Losses.TokenClassification(logits, inputs.Labels);
        return new ModelOutputs { Logits = logits.MoveToOuterDisposeScope(), Loss = loss?.MoveToOuterDisposeScope() };
    }
}

/// <summary>BERT's last hidden state as features (what sentence-transformers pool).</summary>
public sealed class BertForFeatureExtraction : BertPreTrainedModel
{
    /// <summary>A randomly initialised encoder with its pooler.</summary>
    public BertForFeatureExtraction(BertConfig config) : base("BertModel", config, TaskType.FeatureExtraction, addPoolingLayer: true)
    {
        RegisterComponents();
    }

    /// <inheritdoc />
    public override ModelOutputs forward(ModelInputs inputs)
    {
        var (hidden, pooled) = bert.forward(inputs);
        pooled?.Dispose();
        return new ModelOutputs { Logits = hidden };
    }
}
