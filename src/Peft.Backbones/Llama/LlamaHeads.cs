// Llama task heads, following transformers' models/llama/modeling_llama.py and the generic
// sequence/token classification heads of transformers' modeling_layers.py.
using Peft.Modeling;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Peft.Backbones.Llama;

/// <summary>Shared plumbing of the Llama heads: the <c>model</c> stack and the cache.</summary>
public abstract class LlamaPreTrainedModel : PreTrainedModel
{
    /// <summary>Builds the stack for a head.</summary>
    protected LlamaPreTrainedModel(string name, LlamaConfig config, TaskType task) : base(name, config, task)
    {
        model = new LlamaModel(config);
    }

#pragma warning disable IDE1006 // Hugging Face's module name
    /// <summary>The decoder stack, registered as <c>model</c>.</summary>
    protected readonly LlamaModel model;
#pragma warning restore IDE1006

    /// <summary>The config.</summary>
    public LlamaConfig Llama => model.Config;

    /// <inheritdoc />
    public override nn.Module<Tensor, Tensor> InputEmbeddings => model.TokenEmbedding;

    /// <inheritdoc />
    public override string BaseModelPrefix => "model";

    /// <summary>Prefixes are keys and values of the key/value heads (grouped-query attention), as the reference's prefix tuning makes them.</summary>
    public override PromptLayout PromptLayout => new(Llama.NumHiddenLayers, Llama.NumKeyValueHeads, Llama.HeadDim, Llama.HiddenSize);

    /// <summary>Runs the stack, creating or extending the cache as the inputs ask.</summary>
    protected (Tensor Hidden, KeyValueCache? Cache) RunModel(ModelInputs inputs)
    {
        var cache = inputs.PastKeyValues ?? (inputs.UseCache ? new KeyValueCache(Llama.NumHiddenLayers) : null);
        return (model.forward(inputs, cache), cache);
    }
}

/// <summary>Llama with the language-model head (<c>lm_head</c>, no bias), tied to <c>model.embed_tokens</c> only when the config says so.</summary>
public sealed class LlamaForCausalLM : LlamaPreTrainedModel
{
    private nn.Module<Tensor, Tensor>? lm_head;

    /// <summary>A randomly initialised model.</summary>
    public LlamaForCausalLM(LlamaConfig config) : base("LlamaForCausalLM", config, TaskType.CausalLM)
    {
        if (!config.TieWordEmbeddings) lm_head = nn.Linear(config.HiddenSize, config.VocabSize, hasBias: false);
        RegisterComponents();
    }

    /// <inheritdoc />
    public override IReadOnlyList<(string Tied, string Source)> TiedWeights =>
        lm_head is null ? [("lm_head.weight", "model.embed_tokens.weight")] : [];

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
        var (hidden, cache) = RunModel(inputs);
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

/// <summary>Llama classifying a sequence by its last non-padding token (<c>score</c>, no bias).</summary>
[TargetModules("score")]
public sealed partial class LlamaForSequenceClassification : LlamaPreTrainedModel
{
    private nn.Module<Tensor, Tensor> score;

    /// <summary>A randomly initialised model with <c>num_labels</c> outputs.</summary>
    public LlamaForSequenceClassification(LlamaConfig config) : base("LlamaForSequenceClassification", config, TaskType.SequenceClassification)
    {
        score = nn.Linear(config.HiddenSize, config.NumLabels, hasBias: false);
        RegisterComponents();
    }

    /// <inheritdoc />
    public override ModelOutputs forward(ModelInputs inputs)
    {
        using var scope = torch.NewDisposeScope();
        var (hidden, cache) = RunModel(inputs);
        var pooled = SequencePooling.LastToken(score.call(hidden), inputs.InputIds, Config.PadTokenId, "Llama");
        var loss = inputs.Labels is null ? null : Losses.SequenceClassification(pooled, inputs.Labels, Config.NumLabels);
        return new ModelOutputs { Logits = pooled.MoveToOuterDisposeScope(), Loss = loss?.MoveToOuterDisposeScope(), PastKeyValues = cache };
    }
}

/// <summary>Llama labelling every token (<c>score</c>, with bias, after dropout).</summary>
[TargetModules("score")]
public sealed partial class LlamaForTokenClassification : LlamaPreTrainedModel
{
    private readonly Dropout dropout;
    private nn.Module<Tensor, Tensor> score;

    /// <summary>A randomly initialised model with <c>num_labels</c> outputs.</summary>
    public LlamaForTokenClassification(LlamaConfig config) : base("LlamaForTokenClassification", config, TaskType.TokenClassification)
    {
        dropout = nn.Dropout(config.ClassifierDropout ?? 0.1);
        score = nn.Linear(config.HiddenSize, config.NumLabels);
        RegisterComponents();
    }

    /// <inheritdoc />
    public override ModelOutputs forward(ModelInputs inputs)
    {
        using var scope = torch.NewDisposeScope();
        var (hidden, cache) = RunModel(inputs);
        var logits = score.call(dropout.call(hidden));
        var loss = inputs.Labels is null ? null : Losses.TokenClassification(logits, inputs.Labels);
        return new ModelOutputs { Logits = logits.MoveToOuterDisposeScope(), Loss = loss?.MoveToOuterDisposeScope(), PastKeyValues = cache };
    }
}
