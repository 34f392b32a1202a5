// GPT-NeoX task heads, following transformers' models/gpt_neox/modeling_gpt_neox.py.
using Peft.Modeling;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Peft.Backbones.GptNeoX;

/// <summary>Shared plumbing of the GPT-NeoX heads: the <c>gpt_neox</c> stack and the cache.</summary>
public abstract class GptNeoXPreTrainedModel : PreTrainedModel
{
    /// <summary>Builds the stack for a head.</summary>
    protected GptNeoXPreTrainedModel(string name, GptNeoXConfig config, TaskType task) : base(name, config, task)
    {
        gpt_neox = new GptNeoXModel(config);
    }

#pragma warning disable IDE1006 // Hugging Face's module name
    /// <summary>The decoder stack, registered as <c>gpt_neox</c>.</summary>
    protected readonly GptNeoXModel gpt_neox;
#pragma warning restore IDE1006

    /// <summary>The config.</summary>
    public GptNeoXConfig NeoX => gpt_neox.Config;

    /// <inheritdoc />
    public override nn.Module<Tensor, Tensor> InputEmbeddings => gpt_neox.TokenEmbedding;

    /// <inheritdoc />
    public override string BaseModelPrefix => "gpt_neox";

    /// <summary>The checkpoints' name for the language-model head is <c>embed_out</c>.</summary>
    public override IReadOnlyList<string> HeadModuleNames => ["embed_out", "lm_head", "score", "classifier"];

    /// <inheritdoc />
    public override PromptLayout PromptLayout => new(NeoX.NumHiddenLayers, NeoX.NumAttentionHeads, NeoX.HeadDim, NeoX.HiddenSize);

    /// <summary>Runs the stack, creating or extending the cache as the inputs ask.</summary>
    protected (Tensor Hidden, KeyValueCache? Cache) RunModel(ModelInputs inputs)
    {
        var cache = inputs.PastKeyValues ?? (inputs.UseCache ? new KeyValueCache(NeoX.NumHiddenLayers) : null);
        return (gpt_neox.forward(inputs, cache), cache);
    }
}

/// <summary>
/// GPT-NeoX with the language-model head, <c>embed_out</c> (no bias; transformers 5 calls it
/// <c>lm_head</c> at run time but checkpoints keep <c>embed_out</c>). Untied unless the config ties it.
/// </summary>
public sealed class GptNeoXForCausalLM : GptNeoXPreTrainedModel
{
    private nn.Module<Tensor, Tensor>? embed_out;

    /// <summary>A randomly initialised model.</summary>
    public GptNeoXForCausalLM(GptNeoXConfig config) : base("GPTNeoXForCausalLM", config, TaskType.CausalLM)
    {
        if (!config.TieWordEmbeddings) embed_out = nn.Linear(config.HiddenSize, config.VocabSize, hasBias: false);
        RegisterComponents();
    }

    /// <inheritdoc />
    public override IReadOnlyList<(string Tied, string Source)> TiedWeights =>
        embed_out is null ? [("embed_out.weight", "gpt_neox.embed_in.weight")] : [];

    /// <inheritdoc />
    public override void UntieOutputEmbeddings()
    {
        if (embed_out is not null) return;
        using var noGrad = torch.no_grad();
        var weight = EmbeddingWeight(InputEmbeddings);
        var head = nn.Linear(weight.shape[1], weight.shape[0], hasBias: false, dtype: weight.dtype, device: weight.device);
        head.weight!.copy_(weight);
        head.weight.requires_grad = false;
        embed_out = head;
        register_module("embed_out", head);
    }

    /// <inheritdoc />
    public override ModelOutputs forward(ModelInputs inputs)
    {
        using var scope = torch.NewDisposeScope();
        var (hidden, cache) = RunModel(inputs);
        // Tied: the head reads the base embedding's weight, never an adapter's delta on it (as the reference does).
        var logits = embed_out is null
            ? nn.functional.linear(hidden, EmbeddingWeight(InputEmbeddings))
            : embed_out.call(hidden);
        var loss = inputs.Labels is null ? null : Losses.CausalLM(logits, inputs.Labels);
        return new ModelOutputs
        {
            Logits = logits.MoveToOuterDisposeScope(),
            Loss = loss?.MoveToOuterDisposeScope(),
            PastKeyValues = cache,
        };
    }
}

/// <summary>GPT-NeoX classifying a sequence by its last non-padding token (<c>score</c>, no bias).</summary>
[TargetModules("score")]
public sealed partial class GptNeoXForSequenceClassification : GptNeoXPreTrainedModel
{
    private nn.Module<Tensor, Tensor> score;

    /// <summary>A randomly initialised model with <c>num_labels</c> outputs.</summary>
    public GptNeoXForSequenceClassification(GptNeoXConfig config) : base("GPTNeoXForSequenceClassification", config, TaskType.SequenceClassification)
    {
        score = nn.Linear(config.HiddenSize, config.NumLabels, hasBias: false);
        RegisterComponents();
    }

    /// <inheritdoc />
    public override ModelOutputs forward(ModelInputs inputs)
    {
        using var scope = torch.NewDisposeScope();
        var (hidden, cache) = RunModel(inputs);
        var pooled = SequencePooling.LastToken(score.call(hidden), inputs.InputIds, Config.PadTokenId, "GPT-NeoX");
        var loss = inputs.Labels is null ? null : Losses.SequenceClassification(pooled, inputs.Labels, Config.NumLabels);
        return new ModelOutputs { Logits = pooled.MoveToOuterDisposeScope(), Loss = loss?.MoveToOuterDisposeScope(), PastKeyValues = cache };
    }
}

/// <summary>GPT-NeoX labelling every token (<c>classifier</c>, with bias, after dropout).</summary>
[TargetModules("classifier")]
public sealed partial class GptNeoXForTokenClassification : GptNeoXPreTrainedModel
{
    private readonly Dropout dropout;
    private nn.Module<Tensor, Tensor> classifier;

    /// <summary>A randomly initialised model with <c>num_labels</c> outputs.</summary>
    public GptNeoXForTokenClassification(GptNeoXConfig config) : base("GPTNeoXForTokenClassification", config, TaskType.TokenClassification)
    {
        dropout = nn.Dropout(config.ClassifierDropout);
        classifier = nn.Linear(config.HiddenSize, config.NumLabels);
        RegisterComponents();
    }

    /// <inheritdoc />
    public override ModelOutputs forward(ModelInputs inputs)
    {
        using var scope = torch.NewDisposeScope();
        var (hidden, cache) = RunModel(inputs);
        var logits = classifier.call(dropout.call(hidden));
        var loss = inputs.Labels is null ? null : Losses.TokenClassification(logits, inputs.Labels);
        return new ModelOutputs { Logits = logits.MoveToOuterDisposeScope(), Loss = loss?.MoveToOuterDisposeScope(), PastKeyValues = cache };
    }
}
