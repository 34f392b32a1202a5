// GPT-J task heads, following transformers' models/gptj/modeling_gptj.py.
using Peft.Modeling;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Peft.Backbones.GptJ;

/// <summary>Shared plumbing of the GPT-J heads: the <c>transformer</c> stack and the cache.</summary>
public abstract class GptJPreTrainedModel : PreTrainedModel
{
    /// <summary>Builds the stack for a head.</summary>
    protected GptJPreTrainedModel(string name, GptJConfig config, TaskType task) : base(name, config, task)
    {
        transformer = new GptJModel(config);
    }

#pragma warning disable IDE1006 // Hugging Face's module name
    /// <summary>The decoder stack, registered as <c>transformer</c>.</summary>
    protected readonly GptJModel transformer;
#pragma warning restore IDE1006

    /// <summary>The config.</summary>
    public GptJConfig GptJ => transformer.Config;

    /// <inheritdoc />
    public override nn.Module<Tensor, Tensor> InputEmbeddings => transformer.TokenEmbedding;

    /// <inheritdoc />
    public override string BaseModelPrefix => "transformer";

    /// <inheritdoc />
    public override PromptLayout PromptLayout => new(GptJ.NLayer, GptJ.NHead, GptJ.HeadDim, GptJ.NEmbd);

    /// <summary>Runs the stack, creating or extending the cache as the inputs ask.</summary>
    protected (Tensor Hidden, KeyValueCache? Cache) RunTransformer(ModelInputs inputs)
    {
        var cache = inputs.PastKeyValues ?? (inputs.UseCache ? new KeyValueCache(GptJ.NLayer) : null);
        return (transformer.forward(inputs, cache), cache);
    }
}

/// <summary>
/// GPT-J with the language-model head (<c>lm_head</c>, with bias). Untied by default; when the
/// config ties it, the head's weight is <c>transformer.wte</c>'s and only its bias is its own.
/// </summary>
public sealed class GptJForCausalLM : GptJPreTrainedModel
{
    private readonly Linear lm_head;
    private bool _tied;

    /// <summary>A randomly initialised model.</summary>
    public GptJForCausalLM(GptJConfig config) : base("GPTJForCausalLM", config, TaskType.CausalLM)
    {
        lm_head = nn.Linear(config.NEmbd, config.VocabSize);
        _tied = config.TieWordEmbeddings;
        if (_tied) lm_head.weight = (Parameter)EmbeddingWeight(InputEmbeddings);
        RegisterComponents();
    }

    /// <inheritdoc />
    public override IReadOnlyList<(string Tied, string Source)> TiedWeights =>
        _tied ? [("lm_head.weight", "transformer.wte.weight")] : [];

    /// <inheritdoc />
    public override void UntieOutputEmbeddings()
    {
        if (!_tied) return;
        using var noGrad = torch.no_grad();
        lm_head.weight = new Parameter(EmbeddingWeight(InputEmbeddings).detach().clone(), requires_grad: false);
        _tied = false;
    }

    /// <inheritdoc />
    public override ModelOutputs forward(ModelInputs inputs)
    {
        using var scope = torch.NewDisposeScope();
        var (hidden, cache) = RunTransformer(inputs);
        var logits = lm_head.call(hidden).to(ScalarType.Float32);
        var loss = inputs.Labels is null ? null : Losses.CausalLM(logits, inputs.Labels);
        return new ModelOutputs
        {
            Logits = logits.MoveToOuterDisposeScope(),
            Loss = loss?.MoveToOuterDisposeScope(),
            PastKeyValues = cache,
        };
    }
}

/// <summary>GPT-J classifying a sequence by its last non-padding token (<c>score</c>, no bias).</summary>
[TargetModules("score")]
public sealed partial class GptJForSequenceClassification : GptJPreTrainedModel
{
    private nn.Module<Tensor, Tensor> score;

    /// <summary>A randomly initialised model with <c>num_labels</c> outputs.</summary>
    public GptJForSequenceClassification(GptJConfig config) : base("GPTJForSequenceClassification", config, TaskType.SequenceClassification)
    {
        score = nn.Linear(config.NEmbd, config.NumLabels, hasBias: false);
        RegisterComponents();
    }

    /// <inheritdoc />
    public override ModelOutputs forward(ModelInputs inputs)
    {
        using var scope = torch.NewDisposeScope();
        var (hidden, cache) = RunTransformer(inputs);
        var pooled = SequencePooling.LastToken(score.call(hidden), inputs.InputIds, Config.PadTokenId, "GPT-J");
        var loss = inputs.Labels is null ? null : Losses.SequenceClassification(pooled, inputs.Labels, Config.NumLabels);
        return new ModelOutputs { Logits = pooled.MoveToOuterDisposeScope(), Loss = loss?.MoveToOuterDisposeScope(), PastKeyValues = cache };
    }
}
