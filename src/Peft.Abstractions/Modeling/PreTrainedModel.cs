using TorchSharp;
using static TorchSharp.torch;

namespace Peft.Modeling;

/// <summary>
/// A model an architecture plugin builds: a TorchSharp module tree whose parameter names equal
/// the Hugging Face checkpoint's, plus what PEFT methods need to know about it.
/// </summary>
public abstract partial class PreTrainedModel : nn.Module<ModelInputs, ModelOutputs>
{
    /// <summary>Names the module and keeps the config and task it was built for.</summary>
    protected PreTrainedModel(string name, ModelConfig config, TaskType task) : base(name)
    {
        Config = config;
        Task = task;
    }

    /// <summary>The parsed config.json.</summary>
    public ModelConfig Config { get; }

    /// <summary>The task (head) this model was built for.</summary>
    public TaskType Task { get; }

    /// <summary>
    /// Where the model came from (transformers' <c>name_or_path</c>): config.json's <c>_name_or_path</c>
    /// when it names one, else the directory it was loaded from; null for a model built in code.
    /// Saved adapters record it as <c>base_model_name_or_path</c>.
    /// </summary>
    public string? NameOrPath { get; set; }

    /// <summary>
    /// The plugin that built this model, set by the loader (<c>PeftModels.LoadPretrained</c>); null for a
    /// model built in code, whose architecture is then looked up by <see cref="ModelConfig.ModelType"/>.
    /// </summary>
    public Plugins.IArchitecture? Architecture { get; set; }

    /// <summary>
    /// The Python module of the transformers class this model mirrors (saved in an adapter's
    /// <c>auto_mapping</c>): <c>transformers.models.&lt;model_type&gt;.modeling_&lt;model_type&gt;</c> by default.
    /// </summary>
    public virtual string TransformersModule
    {
        get
        {
            var name = Config.ModelType.Replace('-', '_');
            return $"transformers.models.{name}.modeling_{name}";
        }
    }

    /// <summary>
    /// Recompute each transformer layer's forward in backward instead of keeping its activations (transformers'
    /// <c>gradient_checkpointing_enable</c>): activation memory of one layer instead of all, for about one more forward
    /// per step. Only while training with autograd on; with frozen embeddings the first layer's input is made to require
    /// a gradient, as PEFT's <c>enable_input_require_grads</c> does, so checkpointed layers still train their adapters.
    /// </summary>
    /// <exception cref="NotSupportedException">The architecture's layer stack does not implement checkpointing.</exception>
    public void GradientCheckpointingEnable() => SetGradientCheckpointing(true);

    /// <summary>Turns <see cref="GradientCheckpointingEnable"/> off again.</summary>
    public void GradientCheckpointingDisable() => SetGradientCheckpointing(false);

    /// <summary>Whether the layer stacks are checkpointed.</summary>
    public bool IsGradientCheckpointing => modules().OfType<IGradientCheckpointing>().Any(m => m.GradientCheckpointing);

    /// <summary>Whether this architecture's layer stack implements gradient checkpointing.</summary>
    public bool SupportsGradientCheckpointing => modules().OfType<IGradientCheckpointing>().Any();

    private void SetGradientCheckpointing(bool enabled)
    {
        var stacks = modules().OfType<IGradientCheckpointing>().ToList();
        if (stacks.Count == 0)
        {
            if (!enabled) return;
            throw new NotSupportedException($"Gradient checkpointing is not implemented for '{Config.ModelType}' models (every built-in architecture has it but ResNet, whose batch norms would update their running statistics twice if a stage ran again in backward).");
        }
        foreach (var stack in stacks) stack.GradientCheckpointing = enabled;
    }

    /// <summary>The token embedding; prompt learning embeds virtual tokens next to it.</summary>
    public abstract nn.Module<Tensor, Tensor> InputEmbeddings { get; }

    /// <summary>
    /// True for encoder-decoder models (T5, BART): forward() runs the encoder on the inputs (or takes
    /// <see cref="ModelInputs.EncoderHiddenStates"/>) and the decoder on the decoder inputs, and generation
    /// starts the decoder from <c>decoder_start_token_id</c>.
    /// </summary>
    public virtual bool IsEncoderDecoder => false;

    /// <summary>What prompt learning needs to know about the layout of attention; null when unsupported.</summary>
    public virtual PromptLayout? PromptLayout => null;

    /// <summary>
    /// Top-level module names of output heads ("lm_head", "score", "classifier"): left out of
    /// "all-linear" targeting, and (for classification tasks) trained in full as modules_to_save.
    /// </summary>
    public virtual IReadOnlyList<string> HeadModuleNames => ["lm_head", "score", "classifier"];

    /// <summary>
    /// The name under which heads hold the bare model (<c>"transformer"</c>, <c>"bert"</c>, <c>"model"</c>);
    /// a checkpoint of the bare model has its keys without it. Null when the model has no such part.
    /// </summary>
    public virtual string? BaseModelPrefix => null;

    /// <summary>
    /// How this model's module names differ from Hugging Face's classic ones (transformers 4
    /// checkpoints and adapters). Checkpoint and adapter keys in either spelling load; the default
    /// has no renamings.
    /// </summary>
    public virtual ModuleRenames ClassicNames => ModuleRenames.None;

    /// <summary>
    /// Pairs of (tied parameter, source parameter) names: the first shares the second's tensor,
    /// and checkpoints store only the second (e.g. lm_head.weight → transformer.wte.weight).
    /// </summary>
    public virtual IReadOnlyList<(string Tied, string Source)> TiedWeights => [];

    /// <summary>
    /// True once <see cref="UntieOutputEmbeddings"/> gave a tied head its own weight: a model saved from
    /// here on says <c>tie_word_embeddings: false</c>.
    /// </summary>
    public bool OutputEmbeddingsUntied { get; protected set; }

    /// <summary>
    /// Gives the output head its own copy of a weight it shares with the input embedding, so that
    /// merging an adapter into the embedding leaves the head as it was, and sets
    /// <see cref="OutputEmbeddingsUntied"/>. The default does nothing.
    /// </summary>
    public virtual void UntieOutputEmbeddings()
    {
    }

    /// <summary>
    /// Registers the bare model under the name heads hold it by (<c>transformer</c>, <c>bert</c>, <c>vit</c>).
    /// No field may hold it: TorchSharp's RegisterComponents would register a field a second time under the
    /// field's own name. Read it back with <see cref="Registered{T}"/>.
    /// </summary>
    /// <param name="name">The name it is saved under.</param>
    /// <param name="module">The bare model (typed as an interface by some heads; it must be a module).</param>
    protected void RegisterBaseModel(string name, object module) =>
        register_module(name, module as nn.Module ?? throw new ArgumentException($"The base model must be a TorchSharp module, not a {module.GetType().Name}.", nameof(module)));

    /// <summary>The module registered as <paramref name="name"/> (see <see cref="RegisterBaseModel"/>).</summary>
    protected T Registered<T>(string name) where T : class => (T)(object)_internal_submodules[name];

    /// <summary>
    /// A bias-free Linear head holding a frozen copy of <paramref name="embeddingWeight"/> (vocab, hidden),
    /// on its device and in its dtype: what <see cref="UntieOutputEmbeddings"/> puts where a tied head was.
    /// </summary>
    protected static TorchSharp.Modules.Linear UntiedHead(Tensor embeddingWeight)
    {
        using var noGrad = torch.no_grad();
        var head = nn.Linear(embeddingWeight.shape[1], embeddingWeight.shape[0], hasBias: false, dtype: embeddingWeight.dtype, device: embeddingWeight.device);
        head.weight!.copy_(embeddingWeight);
        head.weight.requires_grad = false;
        return head;
    }

    /// <summary>The weight of an embedding, looking through adapter layers to the base embedding.</summary>
    protected static Tensor EmbeddingWeight(nn.Module<Tensor, Tensor> embedding) => BaseEmbedding(embedding).weight!;

    /// <inheritdoc cref="Layers.Embeddings.BaseOf"/>
    protected static TorchSharp.Modules.Embedding BaseEmbedding(nn.Module<Tensor, Tensor> embedding) => Layers.Embeddings.BaseOf(embedding);

    /// <summary>
    /// A bias-free Linear head whose weight is <paramref name="embedding"/>'s own parameter object (a tied head, as
    /// transformers' <c>lm_head</c> over <c>embed_tokens.weight</c>): one parameter, listed and counted once. It reads
    /// the base embedding's weight, never an adapter's delta on it, as the reference's tied head does.
    /// </summary>
    protected static TorchSharp.Modules.Linear TiedHead(nn.Module<Tensor, Tensor> embedding)
    {
        var weight = Layers.Embeddings.RegisteredWeight(BaseEmbedding(embedding));
        // A 1 × 1 module: TorchSharp would allocate and initialise a full-size weight only to replace it.
        var head = nn.Linear(1, 1, hasBias: false);
        head.weight = weight;
        return head;
    }

    /// <summary>
    /// The Linear of a head, looking through an adapter layer or a modules_to_save wrapper (whose original it is); null
    /// when the head is something else.
    /// </summary>
    protected static TorchSharp.Modules.Linear? HeadLinear(nn.Module<Tensor, Tensor>? head) => head switch
    {
        TorchSharp.Modules.Linear linear => linear,
        IAdapterLayer adapter => HeadLinear(adapter.BaseLayer),
        Tuners.ModulesToSaveWrapper wrapper => HeadLinear(wrapper.Original),
        _ => null,
    };

    /// <summary>Gives a tied head's Linear a frozen copy of the weight it shares (see <see cref="UntieOutputEmbeddings"/>).</summary>
    protected void Untie(TorchSharp.Modules.Linear head)
    {
        // TorchSharp's Linear disposes the parameter object its weight setter replaces, and here that object is the
        // embeddings' too: they are handed one fresh handle on the same tensor first (an Embedding's setter disposes nothing).
        var shared = Layers.Embeddings.RegisteredWeight(head);
        var sharers = modules().OfType<TorchSharp.Modules.Embedding>().Where(e => Layers.Embeddings.RegisteredWeight(e).Handle == shared.Handle).ToList();
        var handle = sharers.Count > 0 ? sharers[0].weight! : null;
        using (torch.no_grad()) head.weight = new TorchSharp.Modules.Parameter(shared.detach().clone(), requires_grad: false);
        foreach (var embedding in sharers) embedding.weight = handle!;
    }
}
