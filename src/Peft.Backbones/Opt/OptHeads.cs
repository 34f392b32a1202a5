// OPT task heads, following transformers' models/opt/modeling_opt.py.
using Peft.Modeling;
using TorchSharp;
using static TorchSharp.torch;

namespace Peft.Backbones.Opt;

/// <summary>Shared plumbing of the OPT heads: the <c>model</c> stack and the cache.</summary>
public abstract class OptPreTrainedModel : PreTrainedModel
{
    /// <summary>Builds the stack for a head.</summary>
    protected OptPreTrainedModel(string name, OptConfig config, TaskType task) : base(name, config, task)
    {
        model = new OptModel(config);
    }

#pragma warning disable IDE1006 // Hugging Face's module name
    /// <summary>The decoder stack, registered as <c>model</c>.</summary>
    protected readonly OptModel model;
#pragma warning restore IDE1006

    /// <summary>The config.</summary>
    public OptConfig Opt => model.Decoder.Config;

    /// <inheritdoc />
    public override nn.Module<Tensor, Tensor> InputEmbeddings => model.Decoder.TokenEmbedding;

    /// <inheritdoc />
    public override string BaseModelPrefix => "model";

    /// <inheritdoc />
    /// <remarks>Virtual tokens are embedded at word_embed_proj_dim (the token embedding's size); prefixes are per head of hidden_size.</remarks>
    public override PromptLayout PromptLayout => new(Opt.NumHiddenLayers, Opt.NumAttentionHeads, Opt.HeadDim, Opt.WordEmbedProjDim);

    /// <summary>Runs the stack, creating or extending the cache as the inputs ask.</summary>
    protected (Tensor Hidden, KeyValueCache? Cache) RunDecoder(ModelInputs inputs)
    {
        var cache = inputs.PastKeyValues ?? (inputs.UseCache ? new KeyValueCache(Opt.NumHiddenLayers) : null);
        return (model.forward(inputs, cache), cache);
    }
}

/// <summary>OPT with the language-model head, its weight tied to <c>model.decoder.embed_tokens</c> unless the config unties it.</summary>
public sealed class OptForCausalLM : OptPreTrainedModel
{
    private nn.Module<Tensor, Tensor>? lm_head;

    /// <summary>A randomly initialised model.</summary>
    public OptForCausalLM(OptConfig config) : base("OPTForCausalLM", config, TaskType.CausalLM)
    {
        if (!config.TieWordEmbeddings) lm_head = nn.Linear(config.WordEmbedProjDim, config.VocabSize, hasBias: false);
        RegisterComponents();
    }

    /// <inheritdoc />
    public override IReadOnlyList<(string Tied, string Source)> TiedWeights =>
        lm_head is null ? [("lm_head.weight", "model.decoder.embed_tokens.weight")] : [];

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
        var (hidden, cache) = RunDecoder(inputs);
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

/// <summary>OPT classifying a sequence by its last non-padding token (<c>score</c>, no bias).</summary>
[TargetModules("score")]
public sealed partial class OptForSequenceClassification : OptPreTrainedModel
{
    private nn.Module<Tensor, Tensor> score;

    /// <summary>A randomly initialised model with <c>num_labels</c> outputs.</summary>
    public OptForSequenceClassification(OptConfig config) : base("OPTForSequenceClassification", config, TaskType.SequenceClassification)
    {
        score = nn.Linear(config.WordEmbedProjDim, config.NumLabels, hasBias: false);
        RegisterComponents();
    }

    /// <inheritdoc />
    public override ModelOutputs forward(ModelInputs inputs)
    {
        using var scope = torch.NewDisposeScope();
        var (hidden, cache) = RunDecoder(inputs);
        var logits = score.call(hidden);                                     // (B, T, labels)
        var pooled = SequencePooling.LastToken(logits, inputs.InputIds, Config.PadTokenId, "OPT");
        var loss = inputs.Labels is null ? null : Losses.SequenceClassification(pooled, inputs.Labels, Config.NumLabels);
        return new ModelOutputs { Logits = pooled.MoveToOuterDisposeScope(), Loss = loss?.MoveToOuterDisposeScope(), PastKeyValues = cache };
    }
}
