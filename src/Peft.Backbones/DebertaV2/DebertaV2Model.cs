// DeBERTa-v2 encoder, model and task heads, following transformers' models/deberta_v2/modeling_deberta_v2.py.
using Peft.Backbones.Deberta;
using Peft.Modeling;
using TorchSharp;
using TorchSharp.Modules;
using TorchSharp.Utils;
using static TorchSharp.torch;

namespace Peft.Backbones.DebertaV2;

/// <summary>
/// The layer stack with the shared relative-position embeddings (optionally layer-normalised, in
/// log buckets) and the optional convolution after the first layer.
/// </summary>
public sealed class DebertaV2Encoder : nn.Module
{
    private readonly ModuleList<DebertaV2Layer> layer;
    private readonly Embedding? rel_embeddings;
    [ComponentName(Name = "LayerNorm")] private readonly LayerNorm? layer_norm;
    private readonly ConvLayer? conv;

    private readonly int _positionBuckets;
    private readonly int _maxRelativePositions;

    /// <summary>Sized by the config.</summary>
    public DebertaV2Encoder(DebertaV2Config config) : base(nameof(DebertaV2Encoder))
    {
        layer = nn.ModuleList(Enumerable.Range(0, config.NumHiddenLayers).Select(_ => new DebertaV2Layer(config)).ToArray());
        if (config.RelativeAttention)
        {
            _positionBuckets = config.PositionBuckets;
            _maxRelativePositions = config.MaxRelativePositions;
            rel_embeddings = nn.Embedding(config.PosEbdSize * 2, config.HiddenSize);
        }
        if (config.NormalisesRelEmbeddings) layer_norm = nn.LayerNorm(config.HiddenSize, config.LayerNormEps);
        if (config.ConvKernelSize > 0) conv = new ConvLayer(config);
        RegisterComponents();
    }

    /// <summary>Runs the layers over <paramref name="hidden"/> (B, T, C) with the padding mask (B, T).</summary>
    public Tensor forward(Tensor hidden, Tensor mask)
    {
        using var scope = torch.NewDisposeScope();
        var pairs = DebertaMasks.QueryKey(mask);                                   // (B, 1, T, T)
        var length = hidden.shape[1];
        Tensor? relative = null;
        Tensor? relEmbeddings = null;
        if (rel_embeddings is not null)
        {
            relative = RelativePositions.Build(length, length, hidden.device, _positionBuckets, _maxRelativePositions);
            relEmbeddings = layer_norm is null ? rel_embeddings.weight : layer_norm.call(rel_embeddings.weight!);
        }
        var input = hidden;
        for (int i = 0; i < layer.Count; i++)
        {
            hidden = layer[i].forward(hidden, pairs, relative, relEmbeddings);
            if (i == 0 && conv is not null) hidden = conv.forward(input, hidden, mask);
        }
        return hidden.MoveToOuterDisposeScope();
    }
}

/// <summary>The bare DeBERTa-v2 model (<c>deberta</c> in every head): embeddings and encoder.</summary>
public sealed class DebertaV2Model : nn.Module
{
    private readonly DebertaEmbeddings embeddings;
    private readonly DebertaV2Encoder encoder;

    /// <summary>A randomly initialised model of the config's sizes.</summary>
    public DebertaV2Model(DebertaV2Config config) : base(nameof(DebertaV2Model))
    {
        Config = config;
        embeddings = new DebertaEmbeddings(config, nn.LayerNorm(config.HiddenSize, config.LayerNormEps));
        encoder = new DebertaV2Encoder(config);
        RegisterComponents();
    }

    /// <summary>The config the model was built from.</summary>
    public DebertaV2Config Config { get; }

    /// <summary>The token embedding (possibly wrapped by an adapter).</summary>
    public nn.Module<Tensor, Tensor> WordEmbeddings => embeddings.WordEmbeddings;

    /// <summary>The last hidden state (B, T, C).</summary>
    public Tensor forward(ModelInputs inputs)
    {
        using var scope = torch.NewDisposeScope();
        var mask = DebertaMasks.PaddingOrOnes(inputs);
        var hidden = embeddings.forward(inputs, mask);
        return encoder.forward(hidden, mask).MoveToOuterDisposeScope();
    }
}

/// <summary>Shared plumbing of the DeBERTa-v2 heads: the <c>deberta</c> model.</summary>
public abstract class DebertaV2PreTrainedModel : PreTrainedModel
{
    /// <summary>Builds the encoder for a head.</summary>
    protected DebertaV2PreTrainedModel(string name, DebertaV2Config config, TaskType task) : base(name, config, task)
    {
        deberta = new DebertaV2Model(config);
    }

#pragma warning disable IDE1006 // Hugging Face's module name
    /// <summary>The encoder, registered as <c>deberta</c>.</summary>
    protected readonly DebertaV2Model deberta;
#pragma warning restore IDE1006

    /// <summary>The config.</summary>
    public DebertaV2Config Deberta => deberta.Config;

    /// <inheritdoc />
    public override nn.Module<Tensor, Tensor> InputEmbeddings => deberta.WordEmbeddings;

    /// <inheritdoc />
    public override string BaseModelPrefix => "deberta";

    /// <inheritdoc />
    public override PromptLayout PromptLayout => new(Deberta.NumHiddenLayers, Deberta.NumAttentionHeads, Deberta.HeadDim, Deberta.HiddenSize);
}

/// <summary>DeBERTa-v2 classifying a sequence from its pooled first token (<c>pooler</c>, <c>classifier</c>).</summary>
[TargetModules("classifier")]
public sealed partial class DebertaV2ForSequenceClassification : DebertaV2PreTrainedModel
{
    private readonly ContextPooler pooler;
    private nn.Module<Tensor, Tensor> classifier;
    private readonly Dropout dropout;

    /// <summary>A randomly initialised model with <c>num_labels</c> outputs.</summary>
    public DebertaV2ForSequenceClassification(DebertaV2Config config) : base("DebertaV2ForSequenceClassification", config, TaskType.SequenceClassification)
    {
        pooler = new ContextPooler(config);
        classifier = nn.Linear(config.HiddenSize, config.NumLabels);          // the reference sizes it by hidden_size (ContextPooler.output_dim)
        dropout = nn.Dropout(config.ClsDropout ?? config.HiddenDropoutProb);
        RegisterComponents();
    }

    /// <inheritdoc />
    public override ModelOutputs forward(ModelInputs inputs)
    {
        using var scope = torch.NewDisposeScope();
        var hidden = deberta.forward(inputs);
        var logits = classifier.call(dropout.call(pooler.call(hidden)));
        var loss = inputs.Labels is null ? null : DebertaLosses.SequenceClassification(logits, inputs.Labels, Config.NumLabels, Deberta.ProblemType);
        return new ModelOutputs { Logits = logits.MoveToOuterDisposeScope(), Loss = loss?.MoveToOuterDisposeScope() };
    }
}

/// <summary>DeBERTa-v2 labelling every token (<c>classifier</c>).</summary>
[TargetModules("classifier")]
public sealed partial class DebertaV2ForTokenClassification : DebertaV2PreTrainedModel
{
    private readonly Dropout dropout;
    private nn.Module<Tensor, Tensor> classifier;

    /// <summary>A randomly initialised model with <c>num_labels</c> outputs.</summary>
    public DebertaV2ForTokenClassification(DebertaV2Config config) : base("DebertaV2ForTokenClassification", config, TaskType.TokenClassification)
    {
        dropout = nn.Dropout(config.HiddenDropoutProb);
        classifier = nn.Linear(config.HiddenSize, config.NumLabels);
        RegisterComponents();
    }

    /// <inheritdoc />
    public override ModelOutputs forward(ModelInputs inputs)
    {
        using var scope = torch.NewDisposeScope();
        var logits = classifier.call(dropout.call(deberta.forward(inputs)));
        var loss = inputs.Labels is null ? null : Losses.TokenClassification(logits, inputs.Labels);
        return new ModelOutputs { Logits = logits.MoveToOuterDisposeScope(), Loss = loss?.MoveToOuterDisposeScope() };
    }
}
