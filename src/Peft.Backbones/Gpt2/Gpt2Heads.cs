// GPT-2 task heads, following transformers' models/gpt2/modeling_gpt2.py.
using Peft.Modeling;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Peft.Backbones.Gpt2;

/// <summary>Shared plumbing of the GPT-2 heads: the <c>transformer</c> stack and the cache.</summary>
public abstract class Gpt2PreTrainedModel : PreTrainedModel
{
    /// <summary>Builds the stack for a head.</summary>
    protected Gpt2PreTrainedModel(string name, Gpt2Config config, TaskType task) : base(name, config, task)
    {
        transformer = new Gpt2Model(config);
    }

#pragma warning disable IDE1006 // Hugging Face's module name
    /// <summary>The decoder stack, registered as <c>transformer</c>.</summary>
    protected readonly Gpt2Model transformer;
#pragma warning restore IDE1006

    /// <summary>The config.</summary>
    public Gpt2Config Gpt2 => transformer.Config;

    /// <inheritdoc />
    public override nn.Module<Tensor, Tensor> InputEmbeddings => transformer.TokenEmbedding;

    /// <inheritdoc />
    public override string BaseModelPrefix => "transformer";

    /// <inheritdoc />
    public override PromptLayout PromptLayout => new(Gpt2.NLayer, Gpt2.NHead, Gpt2.HeadDim, Gpt2.NEmbd);

    /// <summary>Runs the stack, creating or extending the cache as the inputs ask.</summary>
    protected (Tensor Hidden, KeyValueCache? Cache) RunTransformer(ModelInputs inputs)
    {
        var cache = inputs.PastKeyValues ?? (inputs.UseCache ? new KeyValueCache(Gpt2.NLayer) : null);
        return (transformer.forward(inputs, cache), cache);
    }
}

/// <summary>GPT-2 with the language-model head, its weight tied to <c>transformer.wte</c> unless the config unties it.</summary>
public sealed class Gpt2LMHeadModel : Gpt2PreTrainedModel
{
    private nn.Module<Tensor, Tensor>? lm_head;

    /// <summary>A randomly initialised model.</summary>
    public Gpt2LMHeadModel(Gpt2Config config) : base("GPT2LMHeadModel", config, TaskType.CausalLM)
    {
        if (!config.TieWordEmbeddings) lm_head = nn.Linear(config.NEmbd, config.VocabSize, hasBias: false);
        RegisterComponents();
    }

    /// <inheritdoc />
    public override IReadOnlyList<(string Tied, string Source)> TiedWeights =>
        lm_head is null ? [("lm_head.weight", "transformer.wte.weight")] : [];

    /// <inheritdoc />
    public override void UntieOutputEmbeddings()
    {
        if (lm_head is not null) return;
        using var noGrad = torch.no_grad();
        var weight = EmbeddingWeight(InputEmbeddings);
        var head = nn.Linear(weight.shape[1], weight.shape[0], hasBias: false, dtype: weight.dtype, device: weight.device);
        head.weight!.copy_(weight);
        head.weight.requires_grad = false;
        lm_head = head;
        register_module("lm_head", head);
    }

    /// <inheritdoc />
    public override ModelOutputs forward(ModelInputs inputs)
    {
        using var scope = torch.NewDisposeScope();
        var (hidden, cache) = RunTransformer(inputs);
        // Tied: the head reads the base embedding's weight, never an adapter's delta on it (as the reference does).
        var logits = lm_head is null
            ? nn.functional.linear(hidden, EmbeddingWeight(InputEmbeddings))
            : lm_head.call(hidden);
        var loss = inputs.Labels is null ? null : Losses.CausalLM(logits, inputs.Labels);
        return new ModelOutputs
        {
            Logits = logits.MoveToOuterDisposeScope(),
            Loss = loss?.MoveToOuterDisposeScope(),
            PastKeyValues = cache,
        };
    }
}

/// <summary>GPT-2 classifying a sequence by its last non-padding token (<c>score</c>, no bias).</summary>
[TargetModules("score")]
public sealed partial class Gpt2ForSequenceClassification : Gpt2PreTrainedModel
{
    private nn.Module<Tensor, Tensor> score;

    /// <summary>A randomly initialised model with <c>num_labels</c> outputs.</summary>
    public Gpt2ForSequenceClassification(Gpt2Config config) : base("GPT2ForSequenceClassification", config, TaskType.SequenceClassification)
    {
        score = nn.Linear(config.NEmbd, config.NumLabels, hasBias: false);
        RegisterComponents();
    }

    /// <inheritdoc />
    public override ModelOutputs forward(ModelInputs inputs)
    {
        using var scope = torch.NewDisposeScope();
        var (hidden, cache) = RunTransformer(inputs);
        var logits = score.call(hidden);                                     // (B, T, labels)
        var pooled = SequencePooling.LastToken(logits, inputs.InputIds, Config.PadTokenId, "GPT-2");
        var loss = inputs.Labels is null ? null : Losses.SequenceClassification(pooled, inputs.Labels, Config.NumLabels);
        return new ModelOutputs { Logits = pooled.MoveToOuterDisposeScope(), Loss = loss?.MoveToOuterDisposeScope(), PastKeyValues = cache };
    }
}

/// <summary>GPT-2 labelling every token (<c>classifier</c>, with bias).</summary>
[TargetModules("classifier")]
public sealed partial class Gpt2ForTokenClassification : Gpt2PreTrainedModel
{
    private readonly Dropout dropout;
    private nn.Module<Tensor, Tensor> classifier;

    /// <summary>A randomly initialised model with <c>num_labels</c> outputs.</summary>
    public Gpt2ForTokenClassification(Gpt2Config config) : base("GPT2ForTokenClassification", config, TaskType.TokenClassification)
    {
        dropout = nn.Dropout(config.ClassifierDropout ?? 0.1);
        classifier = nn.Linear(config.NEmbd, config.NumLabels);
        RegisterComponents();
    }

    /// <inheritdoc />
    public override ModelOutputs forward(ModelInputs inputs)
    {
        using var scope = torch.NewDisposeScope();
        var (hidden, cache) = RunTransformer(inputs);
        var logits = classifier.call(dropout.call(hidden));
        var loss = inputs.Labels is null ? null : Losses.TokenClassification(logits, inputs.Labels);
        return new ModelOutputs { Logits = logits.MoveToOuterDisposeScope(), Loss = loss?.MoveToOuterDisposeScope(), PastKeyValues = cache };
    }
}
