using Peft.Modeling;
using Peft.Plugins;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Peft.Tuners;

/// <summary>
/// An adapter living inside the model's layers: the layers a <see cref="TunerMethod{TConfig}"/>
/// wrapped, plus any modules_to_save copies. Maps parameters to the reference's saved keys.
/// </summary>
/// <remarks>
/// A method whose adapter does more than its layers (DoRA's saved-key names, AdaLoRA's regulariser
/// and rank allocator) derives from this class and returns it from
/// <see cref="TunerMethod{TConfig}.CreateAdapter"/>; the overridable members are
/// <see cref="SavedKey"/>, <see cref="GetStateDict"/>, <see cref="LoadStateDict"/>,
/// <see cref="CompleteOutputs"/> and <see cref="AfterOptimizerStep"/>.
/// </remarks>
public class TunerAdapter : IAdapter, IMergeable
{
    /// <summary>Parameter names inside a PeftModel start with this; saved keys too.</summary>
    public const string SavedKeyPrefix = "base_model.model.";

    private readonly PreTrainedModel _model;
    private readonly string _parameterPrefix;
    private readonly IReadOnlyList<(string Path, IAdapterLayer Layer)> _layers;
    private readonly IReadOnlyList<(string Path, ModulesToSaveWrapper Wrapper)> _saved;
    private bool _disabled;

    /// <summary>An adapter over the layers a <see cref="TunerMethod{TConfig}"/> wrapped.</summary>
    /// <param name="model">The adapted model.</param>
    /// <param name="name">The adapter's name.</param>
    /// <param name="config">Its config, as applied.</param>
    /// <param name="parameterPrefix">The prefix of its parameters' names (<c>"lora_"</c>).</param>
    /// <param name="layers">The wrapped layers by full module name.</param>
    /// <param name="saved">The modules_to_save wrappers by full module name.</param>
    protected internal TunerAdapter(PreTrainedModel model, string name, TunerConfig config, string parameterPrefix,
        IReadOnlyList<(string, IAdapterLayer)> layers, IReadOnlyList<(string, ModulesToSaveWrapper)> saved)
    {
        _model = model;
        Name = name;
        Config = config;
        _parameterPrefix = parameterPrefix;
        _layers = layers;
        _saved = saved;
    }

    /// <inheritdoc />
    public string Name { get; }

    /// <inheritdoc />
    public PeftConfig Config { get; protected set; }

    /// <inheritdoc />
    public nn.Module? OwnedModule => null;

    /// <summary>The adapted model.</summary>
    protected PreTrainedModel Model => _model;

    /// <summary>The wrapped layers by full module name.</summary>
    public IReadOnlyList<(string Path, IAdapterLayer Layer)> Layers => _layers;

    /// <inheritdoc />
    public bool CanMerge => true;

    /// <inheritdoc />
    public bool Disabled
    {
        get => _disabled;
        set
        {
            _disabled = value;
            foreach (var (_, layer) in _layers) layer.AdaptersDisabled = value;
            foreach (var (_, wrapper) in _saved) wrapper.Disabled = value;
        }
    }

    /// <summary>Adds or removes this adapter in its own layers' active adapters and modules_to_save wrappers.</summary>
    public void SetActive(bool active)
    {
        foreach (var (_, layer) in _layers)
        {
            var others = layer.ActiveAdapters.Where(a => a != Name);
            layer.ActiveAdapters = active ? [.. others, Name] : [.. others];
        }
        ModulesToSave.SetActive(_saved, Name, active);
    }

    /// <summary>Deletes this adapter's weights from its layers and its copies from the modules_to_save wrappers.</summary>
    public void Remove()
    {
        foreach (var (_, layer) in _layers) layer.DeleteAdapter(Name);
        ModulesToSave.Remove(_saved, Name);
    }

    /// <inheritdoc />
    public ModelInputs PrepareInputs(ModelInputs inputs) => inputs;

    /// <inheritdoc />
    public virtual ModelOutputs CompleteOutputs(ModelOutputs outputs) => outputs;

    /// <inheritdoc />
    public virtual void AfterOptimizerStep(int globalStep)
    {
    }

    /// <summary>The adapter's parameters with their in-memory names (relative to the model), adapter name included.</summary>
    public IEnumerable<(string Name, Parameter Parameter)> NamedParameters()
    {
        foreach (var (path, layer) in _layers)
        {
            foreach (var (name, p) in ((nn.Module)layer).named_parameters())
            {
                if (IsAdapterParameter(name)) yield return ($"{path}.{name}", p);
            }
        }
        foreach (var (path, wrapper) in _saved)
        {
            if (!wrapper.Copies.TryGetValue(Name, out var copy)) continue;
            foreach (var (name, p) in copy.named_parameters()) yield return ($"{path}.modules_to_save.{Name}.{name}", p);
        }
    }

    private bool IsAdapterParameter(string name) =>
        name.StartsWith(_parameterPrefix, StringComparison.Ordinal) && (name.Contains("." + Name + ".") || name.EndsWith("." + Name, StringComparison.Ordinal));

    /// <inheritdoc />
    public void MarkTrainable()
    {
        foreach (var (_, p) in NamedParameters()) p.requires_grad = true;
    }

    /// <inheritdoc />
    public virtual IReadOnlyDictionary<string, Tensor> GetStateDict()
    {
        var state = new Dictionary<string, Tensor>();
        foreach (var (name, p) in NamedParameters()) state[SavedKey(name)] = p;
        foreach (var (name, b) in SavedCopyBuffers()) state[SavedKey(name)] = b;
        foreach (var (name, p) in EmbeddingBaseParameters()) state[BaseKey(name)] = p;
        foreach (var shared in SharedTensors().Where(s => s.Saved)) state[shared.SavedKey] = shared.Tensor;
        return state;
    }

    /// <summary>The tensors the adapter's layers share (<see cref="ISharedTensorsLayer"/>), once per saved key.</summary>
    private IEnumerable<SharedTensor> SharedTensors() => _layers
        .Select(l => l.Layer)
        .OfType<ISharedTensorsLayer>()
        .SelectMany(l => l.SharedTensors(Name))
        .DistinctBy(s => s.SavedKey);

    /// <summary>
    /// The persistent buffers of the modules_to_save copies (a BatchNorm's running statistics), which
    /// the reference saves with them: the copy's whole state_dict, not only its parameters.
    /// </summary>
    private IEnumerable<(string Name, Tensor Buffer)> SavedCopyBuffers()
    {
        foreach (var (path, wrapper) in _saved)
        {
            if (!wrapper.Copies.TryGetValue(Name, out var copy)) continue;
            foreach (var (name, b) in copy.named_buffers(include_nonpersistent: false)) yield return ($"{path}.modules_to_save.{Name}.{name}", b);
        }
    }

    /// <summary>Module names whose targeting makes the reference save embedding weights too (its EMBEDDING_LAYER_NAMES).</summary>
    private static readonly string[] EmbeddingLayerNames = ["embed_tokens", "lm_head"];

    /// <summary>
    /// The base weights the reference saves beside the adapter (save_embedding_layers="auto"): when
    /// target_modules names <c>embed_tokens</c> or <c>lm_head</c>, the input embedding and the output
    /// head, where they carry an adapter, are saved whole, base layer included.
    /// </summary>
    private IEnumerable<(string Name, Parameter Parameter)> EmbeddingBaseParameters()
    {
        if (Config is not TunerConfig { TargetModules: { } targets } || !EmbeddingIsTargeted(targets)) yield break;
        foreach (var (path, layer) in _layers)
        {
            var isInput = ReferenceEquals(layer, _model.InputEmbeddings);
            var isOutput = _model.Task == TaskType.CausalLM && _model.HeadModuleNames.Contains(path);
            if (!isInput && !isOutput) continue;
            if (LayerShape.Of(layer.BaseLayer).Kind is not (SlotKind.Linear or SlotKind.Embedding)) continue;
            foreach (var (name, p) in layer.BaseLayer.named_parameters()) yield return ($"{path}.base_layer.{name}", p);
        }
    }

    private bool EmbeddingIsTargeted(TargetModules targets)
    {
        if (targets.IsAllLinear) return false;
        if (targets.Names is { } names) return EmbeddingLayerNames.Any(names.Contains);
        return _model.named_modules().Any(m =>
            EmbeddingLayerNames.Any(e => m.name == e || m.name.EndsWith("." + e, StringComparison.Ordinal)) && targets.Matches(m.name));
    }

    /// <summary>
    /// The reference's saved key for an in-memory name (its <c>_remove_adapter_name_from_state_dict_key</c>):
    /// only the adapter name right before the parameter name goes (<c>lora_A.default.weight</c> → <c>lora_A.weight</c>,
    /// <c>lora_embedding_A.default</c> → <c>lora_embedding_A</c>), so an adapter named like a module
    /// (<c>"h"</c>, <c>"0"</c>, <c>"attn"</c>) leaves the path alone. A modules_to_save copy drops its
    /// <c>modules_to_save.&lt;adapter&gt;</c> infix, as the reference's wrapper maps it.
    /// </summary>
    protected virtual string SavedKey(string name)
    {
        var copyInfix = $".modules_to_save.{Name}.";
        foreach (var (path, _) in _saved)
        {
            if (name.StartsWith(path + copyInfix, StringComparison.Ordinal)) return SavedKeyPrefix + path + "." + name[(path.Length + copyInfix.Length)..];
        }
        if (name.EndsWith("." + Name, StringComparison.Ordinal)) return SavedKeyPrefix + name[..^(Name.Length + 1)];
        var lastDot = name.LastIndexOf('.');
        var (head, parameter) = (name[..lastDot], name[(lastDot + 1)..]);
        if (head.EndsWith("." + Name, StringComparison.Ordinal)) head = head[..^(Name.Length + 1)];
        return SavedKeyPrefix + head + "." + parameter;
    }

    /// <summary>The saved key of a base weight saved beside the adapter: its in-memory name, under base_model.model.</summary>
    private static string BaseKey(string name) => SavedKeyPrefix + name;

    /// <inheritdoc />
    public virtual void LoadStateDict(IReadOnlyDictionary<string, Tensor> state, string source)
    {
        // Adapters saved under transformers 4 name modules in the classic spelling.
        if (_model.ClassicNames.Rules.Count > 0) state = state.ToDictionary(kv => _model.ClassicNames.ToCurrent(kv.Key), kv => kv.Value);
        var expected = NamedParameters().Select(p => (p.Name, Tensor: (Tensor)p.Parameter)).Concat(SavedCopyBuffers()).ToList();
        using var noGrad = torch.no_grad();
        foreach (var (name, p) in expected)
        {
            var key = SavedKey(name);
            if (!state.TryGetValue(key, out var value))
            {
                throw new InvalidDataException($"{source}: the adapter has no tensor '{key}' that the model's '{name}' needs.");
            }
            if (!value.shape.SequenceEqual(p.shape))
            {
                throw new InvalidDataException(
                    $"{source}: '{key}' has shape [{string.Join(", ", value.shape)}] but the model expects [{string.Join(", ", p.shape)}].");
            }
            p.copy_(value);
        }
        // Embedding base weights saved beside the adapter load into the base layers, when present (the reference loads non-strictly).
        var embeddings = EmbeddingBaseParameters().ToList();
        foreach (var (name, p) in embeddings)
        {
            if (!state.TryGetValue(BaseKey(name), out var value)) continue;
            if (!value.shape.SequenceEqual(p.shape))
            {
                throw new InvalidDataException(
                    $"{source}: '{BaseKey(name)}' has shape [{string.Join(", ", value.shape)}] but the model expects [{string.Join(", ", p.shape)}].");
            }
            p.copy_(value);
        }
        var shared = SharedTensors().ToList();
        foreach (var tensor in shared)
        {
            if (!state.TryGetValue(tensor.SavedKey, out var value))
            {
                if (tensor.Saved) throw new InvalidDataException($"{source}: the adapter has no tensor '{tensor.SavedKey}' that its layers share.");
                continue;
            }
            if (!tensor.Saved) continue; // rebuilt from the config; the reference ignores a saved copy then
            if (!value.shape.SequenceEqual(tensor.Tensor.shape))
            {
                throw new InvalidDataException(
                    $"{source}: '{tensor.SavedKey}' has shape [{string.Join(", ", value.shape)}] but the model expects [{string.Join(", ", tensor.Tensor.shape)}].");
            }
            tensor.Tensor.copy_(value);
        }
        var known = expected.Select(e => SavedKey(e.Name)).Concat(embeddings.Select(e => BaseKey(e.Name))).Concat(shared.Select(s => s.SavedKey)).ToHashSet();
        var unknown = state.Keys.Where(k => !known.Contains(k)).ToList();
        if (unknown.Count > 0)
        {
            throw new InvalidDataException(
                $"{source}: {unknown.Count} tensor(s) do not fit the model, e.g. '{unknown[0]}'. Was the adapter trained on another architecture or with other target_modules?");
        }
    }

    /// <inheritdoc />
    public void Merge() => Merge(safeMerge: false);

    /// <inheritdoc />
    public void Merge(bool safeMerge)
    {
        foreach (var (path, layer) in _layers)
        {
            try
            {
                layer.Merge([Name], safeMerge);
            }
            catch (NonFiniteMergeException e)
            {
                throw new NonFiniteMergeException(e.AdapterName, $"{path}: {e.Message}");
            }
        }
    }

    /// <inheritdoc />
    public void Unmerge()
    {
        foreach (var (_, layer) in _layers) layer.Unmerge();
    }

    /// <inheritdoc />
    public void Unload(bool merge)
    {
        if (merge) Merge();
        var slots = ModuleSlot.All(_model).ToDictionary(s => s.Path);
        foreach (var (path, layer) in _layers) slots[path].Replace(layer.BaseLayer);
        foreach (var (path, wrapper) in _saved) slots[path].Replace(wrapper.Copies.TryGetValue(Name, out var copy) ? copy : wrapper.Original);
    }
}
