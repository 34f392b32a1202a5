// DeBERTa task heads, following transformers' models/deberta/modeling_deberta.py.
using Peft.Modeling;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Peft.Backbones.Deberta;

/// <summary>Pools a sequence by its first token: dropout, dense, activation (shared by DeBERTa and DeBERTa-v2).</summary>
[TargetModules("dense")]
public sealed partial class ContextPooler : nn.Module<Tensor, Tensor>
{
    private nn.Module<Tensor, Tensor> dense;
    private readonly Dropout dropout;
    private readonly Func<Tensor, Tensor> _activation;

    /// <summary>Sized by the config's <c>pooler_hidden_size</c>.</summary>
    public ContextPooler(DebertaConfig config) : base(nameof(ContextPooler))
    {
        dense = nn.Linear(config.PoolerHiddenSize, config.PoolerHiddenSize);
        dropout = nn.Dropout(config.PoolerDropout);
        _activation = Activations.Get(config.PoolerHiddenAct);
        RegisterComponents();
    }

    /// <summary>(B, T, C) → (B, C).</summary>
    public override Tensor forward(Tensor hidden)
    {
        using var scope = torch.NewDisposeScope();
        var first = hidden[.., 0];
        return _activation(dense.call(dropout.call(first))).MoveToOuterDisposeScope();
    }
}

/// <summary>The sequence-classification loss DeBERTa's heads compute (it differs from the generic one).</summary>
public static class DebertaLosses
{
    /// <summary>
    /// With <c>problem_type</c> unset: mean squared error for one label; for one integer label per
    /// sequence, cross-entropy over the sequences whose label is not negative (0 when none is);
    /// for label distributions, the mean soft-target cross-entropy. Otherwise the named loss.
    /// </summary>
    public static Tensor SequenceClassification(Tensor logits, Tensor labels, int numLabels, string? problemType)
    {
        using var scope = torch.NewDisposeScope();
        Tensor loss;
        switch (problemType)
        {
            case null when numLabels == 1:
                loss = nn.functional.mse_loss(logits.view(-1), labels.view(-1).to(logits.dtype));
                break;
            case null when labels.dim() == 1 || labels.shape[^1] == 1:
                var flat = labels.view(-1).to(ScalarType.Int64);
                var labelled = flat.ge(0).nonzero();                                    // (N, 1)
                if (labelled.shape[0] == 0)
                {
                    loss = torch.tensor(0, dtype: logits.dtype, device: logits.device);
                    break;
                }
                var rows = torch.gather(logits, 0, labelled.expand(labelled.shape[0], logits.shape[1]));
                var targets = torch.gather(flat, 0, labelled.view(-1));
                loss = nn.functional.cross_entropy(rows.view(-1, numLabels).to(ScalarType.Float32), targets);
                break;
            case null:
                loss = -(nn.functional.log_softmax(logits, -1) * labels).sum(-1).mean();
                break;
            case "regression":
                loss = numLabels == 1
                    ? nn.functional.mse_loss(logits.squeeze(), labels.squeeze().to(logits.dtype))
                    : nn.functional.mse_loss(logits, labels.to(logits.dtype));
                break;
            case "single_label_classification":
                loss = nn.functional.cross_entropy(logits.view(-1, numLabels), labels.view(-1));
                break;
            case "multi_label_classification":
                loss = nn.functional.binary_cross_entropy_with_logits(logits, labels.to(logits.dtype));
                break;
            default:
                throw new ArgumentException($"Unknown problem_type '{problemType}'.");
        }
        return loss.MoveToOuterDisposeScope();
    }
}

/// <summary>A DeBERTa or DeBERTa-v2 encoder (<c>deberta</c> in every head): word embedding in, last hidden state out.</summary>
public interface IDebertaEncoder
{
    /// <summary>The token embedding (possibly wrapped by an adapter).</summary>
    nn.Module<Tensor, Tensor> WordEmbeddings { get; }

    /// <summary>The last hidden state (B, T, C).</summary>
    Tensor forward(ModelInputs inputs);
}

/// <summary>Shared plumbing of the DeBERTa and DeBERTa-v2 heads: the <c>deberta</c> encoder.</summary>
public abstract class DebertaPreTrainedModel : PreTrainedModel
{
    private const string EncoderName = "deberta";

    /// <summary>Sets the config; the head's constructor ends with <see cref="RegisterHeadsThenEncoder"/>.</summary>
    protected DebertaPreTrainedModel(string name, DebertaConfig config, TaskType task) : base(name, config, task)
    {
        Deberta = config;
    }

    /// <summary>The config.</summary>
    public DebertaConfig Deberta { get; }

    /// <summary>The encoder.</summary>
    protected IDebertaEncoder Encoder => Registered<IDebertaEncoder>(EncoderName);

    /// <inheritdoc />
    public override nn.Module<Tensor, Tensor> InputEmbeddings => Encoder.WordEmbeddings;

    /// <inheritdoc />
    public override string BaseModelPrefix => EncoderName;

    /// <inheritdoc />
    public override PromptLayout PromptLayout => new(Deberta.NumHiddenLayers, Deberta.NumAttentionHeads, Deberta.HeadDim, Deberta.HiddenSize);

    /// <summary>Registers the head's fields, then the encoder as <c>deberta</c> (the heads come first in the state dict, as before).</summary>
    protected void RegisterHeadsThenEncoder(IDebertaEncoder encoder)
    {
        RegisterComponents();
        RegisterBaseModel(EncoderName, encoder);
    }
}

/// <summary>DeBERTa (or DeBERTa-v2) classifying a sequence from its pooled first token (<c>pooler</c>, <c>classifier</c>).</summary>
[TargetModules("classifier")]
public sealed partial class DebertaForSequenceClassification : DebertaPreTrainedModel
{
    private readonly ContextPooler pooler;
    private nn.Module<Tensor, Tensor> classifier;
    private readonly Dropout dropout;

    /// <summary>A randomly initialised DeBERTa model with <c>num_labels</c> outputs.</summary>
    public DebertaForSequenceClassification(DebertaConfig config) : this("DebertaForSequenceClassification", config, new DebertaModel(config))
    {
    }

    /// <summary>A randomly initialised model over <paramref name="encoder"/> (DeBERTa-v2 passes its own), named <paramref name="name"/>.</summary>
    public DebertaForSequenceClassification(string name, DebertaConfig config, IDebertaEncoder encoder) : base(name, config, TaskType.SequenceClassification)
    {
        pooler = new ContextPooler(config);
        classifier = nn.Linear(config.HiddenSize, config.NumLabels);          // the reference sizes it by hidden_size (ContextPooler.output_dim)
        dropout = nn.Dropout(config.ClsDropout ?? config.HiddenDropoutProb);
        RegisterHeadsThenEncoder(encoder);
    }

    /// <inheritdoc />
    public override ModelOutputs forward(ModelInputs inputs)
    {
        using var scope = torch.NewDisposeScope();
        var hidden = Encoder.forward(inputs);
        var logits = classifier.call(dropout.call(pooler.call(hidden)));
        var loss = inputs.Labels is null ? null : DebertaLosses.SequenceClassification(logits, inputs.Labels, Config.NumLabels, Deberta.ProblemType);
        return new ModelOutputs { Logits = logits.MoveToOuterDisposeScope(), Loss = loss?.MoveToOuterDisposeScope() };
    }
}

/// <summary>DeBERTa (or DeBERTa-v2) labelling every token (<c>classifier</c>).</summary>
[TargetModules("classifier")]
public sealed partial class DebertaForTokenClassification : DebertaPreTrainedModel
{
    private readonly Dropout dropout;
    private nn.Module<Tensor, Tensor> classifier;

    /// <summary>A randomly initialised DeBERTa model with <c>num_labels</c> outputs.</summary>
    public DebertaForTokenClassification(DebertaConfig config) : this("DebertaForTokenClassification", config, new DebertaModel(config))
    {
    }

    /// <summary>A randomly initialised model over <paramref name="encoder"/> (DeBERTa-v2 passes its own), named <paramref name="name"/>.</summary>
    public DebertaForTokenClassification(string name, DebertaConfig config, IDebertaEncoder encoder) : base(name, config, TaskType.TokenClassification)
    {
        dropout = nn.Dropout(config.HiddenDropoutProb);
        classifier = nn.Linear(config.HiddenSize, config.NumLabels);
        RegisterHeadsThenEncoder(encoder);
    }

    /// <inheritdoc />
    public override ModelOutputs forward(ModelInputs inputs)
    {
        using var scope = torch.NewDisposeScope();
        var logits = classifier.call(dropout.call(Encoder.forward(inputs)));
        var loss = inputs.Labels is null ? null : Losses.TokenClassification(logits, inputs.Labels);
        return new ModelOutputs { Logits = logits.MoveToOuterDisposeScope(), Loss = loss?.MoveToOuterDisposeScope() };
    }
}
