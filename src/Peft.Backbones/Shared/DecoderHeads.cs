// The task heads every decoder-only architecture shares, following transformers' <Model>ForCausalLM
// heads and the generic sequence/token classification heads of transformers' modeling_layers.py.
using Peft.Modeling;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Peft.Backbones.Shared;

/// <summary>A decoder-only stack the shared heads run: token embedding in, hidden states out.</summary>
public interface IDecoderStack
{
    /// <summary>The token embedding (the input embeddings; the tied output head's weight).</summary>
    nn.Module<Tensor, Tensor> TokenEmbedding { get; }

    /// <summary>Runs the stack; <paramref name="cache"/>, when given, is extended in place.</summary>
    Tensor forward(ModelInputs inputs, KeyValueCache? cache);
}

/// <summary>What the shared decoder heads need to know of an architecture (named, so that no two strings can swap places).</summary>
public sealed record DecoderHeadFacts
{
    /// <summary>The stack's Hugging Face module name (<c>transformer</c>, <c>model</c>, <c>gpt_neox</c>): the base-model prefix.</summary>
    public required string StackName { get; init; }

    /// <summary>Decoder layers (one key/value cache entry each).</summary>
    public required int LayerCount { get; init; }

    /// <summary>The prompt-learning layout.</summary>
    public required PromptLayout PromptLayout { get; init; }

    /// <summary>Size of the hidden states the heads read.</summary>
    public required long HeadInputSize { get; init; }

    /// <summary>The key of the token embedding's weight, which a tied output head shares.</summary>
    public required string TiedSource { get; init; }

    /// <summary>The architecture's display name, for errors (<c>GPT-2</c>).</summary>
    public required string ModelName { get; init; }

    /// <summary>The prefix of the reference's head class names (<c>GPT2</c>, <c>Llama</c>).</summary>
    public required string ClassPrefix { get; init; }

    /// <summary>The language-model head's module name (<c>lm_head</c>; GPT-NeoX: <c>embed_out</c>).</summary>
    public string LMHeadName { get; init; } = "lm_head";

    /// <summary>Whether the language-model head has a bias (GPT-J); such a head keeps its own bias when tied.</summary>
    public bool LMHeadBias { get; init; }

    /// <summary>Whether the language-model logits are cast to float32 (GPT-J).</summary>
    public bool LogitsToFloat32 { get; init; }

    /// <summary>The causal-LM class name, if not <c>{ClassPrefix}ForCausalLM</c>.</summary>
    public string? CausalLMClassName { get; init; }

    /// <summary>Dropout before the token classifier.</summary>
    public double TokenClassifierDropout { get; init; }

    /// <summary>Head module names, if not the default ones.</summary>
    public IReadOnlyList<string>? HeadModuleNames { get; init; }
}

/// <summary>Shared plumbing of the decoder heads: the stack, registered under its Hugging Face name, and the cache.</summary>
public abstract class DecoderPreTrainedModel : PreTrainedModel
{
    /// <summary>Sets the facts; the head's constructor ends with <see cref="RegisterHeadsThenStack"/>.</summary>
    protected DecoderPreTrainedModel(string name, ModelConfig config, TaskType task, DecoderHeadFacts facts)
        : base(name, config, task)
    {
        Facts = facts;
    }

    /// <summary>The architecture's head facts.</summary>
    public DecoderHeadFacts Facts { get; }

    /// <summary>The decoder stack.</summary>
    protected IDecoderStack Stack => Registered<IDecoderStack>(Facts.StackName);

    /// <summary>
    /// Registers the head's fields, then the stack under <see cref="DecoderHeadFacts.StackName"/>: the
    /// heads come first in the state dict, so that loading a checkpoint into a tied head's shared
    /// weight leaves the embedding's value in it.
    /// </summary>
    protected void RegisterHeadsThenStack(IDecoderStack stack)
    {
        RegisterComponents();
        RegisterBaseModel(Facts.StackName, stack);
    }

    /// <inheritdoc />
    public override nn.Module<Tensor, Tensor> InputEmbeddings => Stack.TokenEmbedding;

    /// <inheritdoc />
    public override string BaseModelPrefix => Facts.StackName;

    /// <inheritdoc />
    public override IReadOnlyList<string> HeadModuleNames => Facts.HeadModuleNames ?? base.HeadModuleNames;

    /// <inheritdoc />
    public override PromptLayout PromptLayout => Facts.PromptLayout;

    /// <summary>Runs the stack, creating or extending the cache as the inputs ask.</summary>
    protected (Tensor Hidden, KeyValueCache? Cache) RunStack(ModelInputs inputs)
    {
        var cache = inputs.PastKeyValues ?? (inputs.UseCache ? new KeyValueCache(Facts.LayerCount) : null);
        return (Stack.forward(inputs, cache), cache);
    }
}

/// <summary>
/// A decoder with the language-model head. Without a bias, a tied head has no module: it reads the
/// base embedding's weight. With a bias (GPT-J), the head is a Linear whose weight, when tied, is
/// the embedding's and whose bias is its own.
/// </summary>
/// <remarks>
/// The head is an adapter slot (LoRA on <c>lm_head</c>, <c>modules_to_save = ["lm_head"]</c>), written by
/// hand because it is a registration, not a field. A tied head without a module is offered as a
/// Linear sharing the embedding's weight, which is registered once an adapter takes its place (as
/// the reference's lm_head, a Linear whose weight is the embedding's).
/// </remarks>
public sealed class DecoderForCausalLM : DecoderPreTrainedModel, IModuleSlots
{
    private bool _tied;

    /// <summary>A randomly initialised model.</summary>
    public DecoderForCausalLM(ModelConfig config, DecoderHeadFacts facts, IDecoderStack stack)
        : base(facts.CausalLMClassName ?? $"{facts.ClassPrefix}ForCausalLM", config, TaskType.CausalLM, facts)
    {
        _tied = config.TieWordEmbeddings;
        if (facts.LMHeadBias)
        {
            var head = nn.Linear(facts.HeadInputSize, config.VocabSize);
            if (_tied) head.weight = Layers.Embeddings.RegisteredWeight(BaseEmbedding(stack.TokenEmbedding));
            register_module(facts.LMHeadName, head);
        }
        else if (!_tied)
        {
            register_module(facts.LMHeadName, nn.Linear(facts.HeadInputSize, config.VocabSize, hasBias: false));
        }

        RegisterHeadsThenStack(stack);
    }

    private nn.Module<Tensor, Tensor>? Head =>
        _internal_submodules.TryGetValue(Facts.LMHeadName, out var head) ? (nn.Module<Tensor, Tensor>)head : null;

    /// <inheritdoc />
    public IReadOnlyList<string> SlotNames => [Facts.LMHeadName];

    /// <inheritdoc />
    public nn.Module<Tensor, Tensor> GetSlot(string name)
    {
        if (name != Facts.LMHeadName) throw new ArgumentException($"{GetName()} has no adapter slot '{name}'.", nameof(name));
        if (Head is { } head) return head;
        // Tied and bias-free: a Linear over the embedding's own weight parameter (no copy, no registration yet).
        _tiedHead ??= TiedHead(InputEmbeddings);
        return _tiedHead;
    }

    /// <inheritdoc />
    public void ReplaceSlot(string name, nn.Module<Tensor, Tensor> module)
    {
        if (name != Facts.LMHeadName) throw new ArgumentException($"{GetName()} has no adapter slot '{name}'.", nameof(name));
        // Keep the heads-then-stack registration order of a fresh model (state dict order).
        var stack = _internal_submodules[Facts.StackName];
        _internal_submodules.Remove(Facts.StackName);
        _internal_submodules[name] = module;
        _internal_submodules[Facts.StackName] = stack;
    }

    private nn.Module<Tensor, Tensor>? _tiedHead;

    /// <inheritdoc />
    public override IReadOnlyList<(string Tied, string Source)> TiedWeights =>
        _tied ? [($"{Facts.LMHeadName}.weight", Facts.TiedSource)] : [];

    /// <inheritdoc />
    public override void UntieOutputEmbeddings()
    {
        if (!_tied) return;
        using var noGrad = torch.no_grad();
        var weight = EmbeddingWeight(InputEmbeddings);
        if (HeadLinear(Head) is { } linear)
        {
            // A biased head, or a tied head an adapter wraps: its own copy of the shared weight.
            Untie(linear);
        }
        else
        {
            register_module(Facts.LMHeadName, UntiedHead(weight));
        }

        _tied = false;
        OutputEmbeddingsUntied = true;
    }

    /// <inheritdoc />
    public override ModelOutputs forward(ModelInputs inputs)
    {
        using var scope = torch.NewDisposeScope();
        var (hidden, cache) = RunStack(inputs);
        // Tied without a module: the head reads the base embedding's weight, never an adapter's delta on it (as the reference does).
        var head = Head;
        var logits = head is null ? nn.functional.linear(hidden, EmbeddingWeight(InputEmbeddings)) : head.call(hidden);
        if (Facts.LogitsToFloat32) logits = Precision.AtLeastFloat32(logits);
        var loss = inputs.Labels is null ? null : Losses.CausalLM(logits, inputs.Labels);
        return new ModelOutputs
        {
            Logits = logits.MoveToOuterDisposeScope(),
            Loss = loss?.MoveToOuterDisposeScope(),
            PastKeyValues = cache,
        };
    }
}

/// <summary>A decoder classifying a sequence by its last non-padding token (<c>score</c>, no bias).</summary>
[TargetModules("score")]
public sealed partial class DecoderForSequenceClassification : DecoderPreTrainedModel
{
    private nn.Module<Tensor, Tensor> score;

    /// <summary>A randomly initialised model with <c>num_labels</c> outputs.</summary>
    public DecoderForSequenceClassification(ModelConfig config, DecoderHeadFacts facts, IDecoderStack stack)
        : base($"{facts.ClassPrefix}ForSequenceClassification", config, TaskType.SequenceClassification, facts)
    {
        score = nn.Linear(facts.HeadInputSize, config.NumLabels, hasBias: false);
        RegisterHeadsThenStack(stack);
    }

    /// <inheritdoc />
    public override ModelOutputs forward(ModelInputs inputs)
    {
        using var scope = torch.NewDisposeScope();
        var (hidden, cache) = RunStack(inputs);
        var pooled = SequencePooling.LastToken(score.call(hidden), inputs.InputIds, Config.PadTokenId, Facts.ModelName);
        var loss = inputs.Labels is null ? null : Losses.SequenceClassification(pooled, inputs.Labels, Config.NumLabels);
        return new ModelOutputs { Logits = pooled.MoveToOuterDisposeScope(), Loss = loss?.MoveToOuterDisposeScope(), PastKeyValues = cache };
    }
}

/// <summary>A decoder labelling every token (<c>classifier</c>, with bias, after dropout).</summary>
[TargetModules("classifier")]
public sealed partial class DecoderForTokenClassification : DecoderPreTrainedModel
{
    private readonly Dropout dropout;
    private nn.Module<Tensor, Tensor> classifier;

    /// <summary>A randomly initialised model with <c>num_labels</c> outputs.</summary>
    public DecoderForTokenClassification(ModelConfig config, DecoderHeadFacts facts, IDecoderStack stack)
        : base($"{facts.ClassPrefix}ForTokenClassification", config, TaskType.TokenClassification, facts)
    {
        dropout = nn.Dropout(facts.TokenClassifierDropout);
        classifier = nn.Linear(facts.HeadInputSize, config.NumLabels);
        RegisterHeadsThenStack(stack);
    }

    /// <inheritdoc />
    public override ModelOutputs forward(ModelInputs inputs)
    {
        using var scope = torch.NewDisposeScope();
        var (hidden, cache) = RunStack(inputs);
        var logits = classifier.call(dropout.call(hidden));
        var loss = inputs.Labels is null ? null : Losses.TokenClassification(logits, inputs.Labels);
        return new ModelOutputs { Logits = logits.MoveToOuterDisposeScope(), Loss = loss?.MoveToOuterDisposeScope(), PastKeyValues = cache };
    }
}

/// <summary>A decoder labelling every token with a head named <c>score</c> (with bias, after dropout), as Llama's.</summary>
[TargetModules("score")]
public sealed partial class DecoderForTokenScoring : DecoderPreTrainedModel
{
    private readonly Dropout dropout;
    private nn.Module<Tensor, Tensor> score;

    /// <summary>A randomly initialised model with <c>num_labels</c> outputs.</summary>
    public DecoderForTokenScoring(ModelConfig config, DecoderHeadFacts facts, IDecoderStack stack)
        : base($"{facts.ClassPrefix}ForTokenClassification", config, TaskType.TokenClassification, facts)
    {
        dropout = nn.Dropout(facts.TokenClassifierDropout);
        score = nn.Linear(facts.HeadInputSize, config.NumLabels);
        RegisterHeadsThenStack(stack);
    }

    /// <inheritdoc />
    public override ModelOutputs forward(ModelInputs inputs)
    {
        using var scope = torch.NewDisposeScope();
        var (hidden, cache) = RunStack(inputs);
        var logits = score.call(dropout.call(hidden));
        var loss = inputs.Labels is null ? null : Losses.TokenClassification(logits, inputs.Labels);
        return new ModelOutputs { Logits = logits.MoveToOuterDisposeScope(), Loss = loss?.MoveToOuterDisposeScope(), PastKeyValues = cache };
    }
}
