using System.Globalization;
using System.Text.Json;
using Peft.Checkpoints;
using Peft.Modeling;
using Peft.Plugins;
using Peft.Tuners;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Peft;

/// <summary>
/// A base model with one or more adapters (the reference's <c>PeftModel</c>). Parameter names
/// follow the reference: <c>base_model.model.&lt;path&gt;</c> for adapters inside layers, and
/// <c>prompt_encoder.&lt;adapter&gt;.*</c> for prompt learning.
/// </summary>
public sealed partial class PeftModel : nn.Module<ModelInputs, ModelOutputs>
{
    /// <summary>The adapter name used when none is given.</summary>
    public const string DefaultAdapterName = "default";

    private const string ConfigFileName = "adapter_config.json";
    private const string ReferencePeftVersion = "0.21.0";
    private const string WeightsFileName = "adapter_model.safetensors";
    private const string PickledWeightsFileName = "adapter_model.bin";

    private readonly PeftRegistry _registry;
    private readonly Dictionary<string, IAdapter> _adapters = new(StringComparer.Ordinal);
    private readonly AdapterModuleDict<nn.Module> prompt_encoder = new();
    private readonly nn.Module base_model;

    private PeftModel(AdapterTarget target, PeftRegistry registry, IAdapter first) : base(nameof(PeftModel))
    {
        _registry = registry;
        Model = target.Model;
        Architecture = target.Architecture;
        base_model = first.OwnedModule is null ? new TunerModel(target.Model) : target.Model;
        RegisterComponents();
        Register(first);
    }

    /// <summary>The adapted model.</summary>
    public PreTrainedModel Model { get; }

    /// <summary>The plugin that built <see cref="Model"/>.</summary>
    public IArchitecture Architecture { get; }

    /// <summary>Adapters by name.</summary>
    public IReadOnlyDictionary<string, IAdapter> Adapters => _adapters;

    /// <summary>The adapter forward() uses.</summary>
    public string ActiveAdapterName { get; private set; } = DefaultAdapterName;

    /// <summary>The active adapter.</summary>
    public IAdapter ActiveAdapter => _adapters[ActiveAdapterName];

    /// <summary>The active adapter's config.</summary>
    public PeftConfig PeftConfig => ActiveAdapter.Config;

    /// <summary>Attaches a new adapter to <paramref name="model"/> and freezes everything else (get_peft_model).</summary>
    internal static PeftModel Create(PreTrainedModel model, PeftRegistry registry, PeftConfig config, string adapterName = DefaultAdapterName)
    {
        foreach (var parameter in model.parameters()) parameter.requires_grad = false;
        config = WithTaskHeads(config);
        var target = new AdapterTarget(model, model.Architecture ?? registry.Architecture(model.Config.ModelType));
        var adapter = registry.Method(config.PeftType).Attach(target, config, adapterName);
        adapter.MarkTrainable();
        adapter.SetActive(true);
        return new PeftModel(target, registry, adapter) { ActiveAdapterName = adapterName };
    }

    /// <summary>
    /// Task heads start untrained, so the reference always trains them in full: it adds the task's
    /// <see cref="TaskType.HeadModulesToSave"/> to a tuner's modules_to_save.
    /// </summary>
    private static PeftConfig WithTaskHeads(PeftConfig config) =>
        config is TunerConfig { TaskType: { } task } tuner && task.HeadModulesToSave.Count > 0
            ? tuner with { ModulesToSave = [.. (tuner.ModulesToSave ?? []).Concat(task.HeadModulesToSave).Distinct()] }
            : config;

    /// <summary>Attaches the adapter saved in <paramref name="adapterDirectory"/> (from_pretrained).</summary>
    /// <param name="model">The base model.</param>
    /// <param name="registry">Where the method plugin is found.</param>
    /// <param name="adapterDirectory">A directory with adapter_config.json and adapter_model.safetensors.</param>
    /// <param name="adapterName">The name to give the adapter.</param>
    /// <param name="isTrainable">False (inference) leaves every parameter frozen.</param>
    internal static PeftModel FromPretrained(PreTrainedModel model, PeftRegistry registry, string adapterDirectory, string adapterName = DefaultAdapterName, bool isTrainable = false)
    {
        var config = ForLoading(ReadAdapterConfig(registry, adapterDirectory), isTrainable);
        CheckSizesAgainstWeights(config, adapterDirectory);
        var peft = Create(model, registry, config, adapterName);
        peft.LoadAdapterWeights(adapterName, adapterDirectory);
        peft.SetTrainable(adapterName, isTrainable);
        return peft;
    }

    /// <summary>
    /// The config as the reference loads it: <c>inference_mode</c> follows <paramref name="isTrainable"/>
    /// whatever the file says, and the weights come from the checkpoint (so options that only decide
    /// how new weights start do not apply). Prompt-learning adapters save only the prompts (the
    /// encoder's output), so they always load as their prompts: an encoder would be random.
    /// </summary>
    private static PeftConfig ForLoading(PeftConfig config, bool isTrainable) =>
        config with { InferenceMode = config is PromptLearning.PromptLearningConfig || !isTrainable, WeightsFromCheckpoint = true };

    /// <summary>Reads adapter_config.json through the method plugin its peft_type names.</summary>
    /// <exception cref="PeftConfigException">The file is missing, unreadable or names an unknown method.</exception>
    internal static PeftConfig ReadAdapterConfig(PeftRegistry registry, string adapterDirectory)
    {
        var path = Path.Combine(adapterDirectory, ConfigFileName);
        if (!File.Exists(path)) throw new PeftConfigException($"{path}: not found.");
        try
        {
            var bytes = File.ReadAllBytes(path);
            // The JSON reader checks UTF-8 only in what it decodes, and then throws an InvalidOperationException (found by fuzz/Peft.Fuzz).
            if (!System.Text.Unicode.Utf8.IsValid(bytes)) throw new PeftConfigException($"{path}: not valid UTF-8 (JSON files are UTF-8).");
            using var document = JsonDocument.Parse(bytes);
            if (document.RootElement.ValueKind != JsonValueKind.Object) throw new PeftConfigException($"{path}: the root is a JSON {document.RootElement.ValueKind}, not an object.");
            if (!document.RootElement.TryGetProperty("peft_type", out var type) || type.ValueKind != JsonValueKind.String)
            {
                throw new PeftConfigException($"{path}: missing required key 'peft_type'.");
            }
            var peftType = new PeftType(type.GetString()!);
            if (!registry.HasMethod(peftType))
            {
                throw new PeftConfigException($"{path}: peft_type '{peftType}' has no method plugin. {registry.DescribeMethods()}");
            }
            return registry.Method(peftType).ParseConfig(document.RootElement, path);
        }
        catch (JsonException e)
        {
            throw new PeftConfigException($"{path}: not valid JSON ({e.Message}).");
        }
    }

    /// <summary>Adds a further adapter from a saved directory (load_adapter); it stays inactive until <see cref="SetAdapter"/>.</summary>
    public void LoadAdapter(string adapterDirectory, string adapterName, bool isTrainable = false)
    {
        var config = ForLoading(ReadAdapterConfig(_registry, adapterDirectory), isTrainable);
        CheckSizesAgainstWeights(config, adapterDirectory);
        AddAdapter(adapterName, config);
        LoadAdapterWeights(adapterName, adapterDirectory);
        SetTrainable(adapterName, isTrainable);
    }

    /// <summary>The config's sizes against the saved weights' header, before the adapter is built (nothing is allocated for a lying config).</summary>
    private static void CheckSizesAgainstWeights(PeftConfig config, string adapterDirectory)
    {
        var path = Path.Combine(adapterDirectory, WeightsFileName);
        // A missing file is reported by the weight loader, with what to do about a pickle.
        if (!File.Exists(path)) return;
        var header = SafeTensors.ReadHeader(path);
        config.CheckAgainstWeights(Path.Combine(adapterDirectory, ConfigFileName), path, header.Tensors.Values.Select(t => (t.Name, t.Shape)).ToList());
    }

    /// <summary>Adds a further, freshly initialised adapter (add_adapter); it stays inactive until <see cref="SetAdapter"/>.</summary>
    public void AddAdapter(string adapterName, PeftConfig config)
    {
        if (_adapters.ContainsKey(adapterName)) throw new ArgumentException($"An adapter named '{adapterName}' already exists.", nameof(adapterName));
        // As Create (and the reference's PeftModelForSequenceClassification.add_adapter): each adapter trains its own head.
        config = WithTaskHeads(config);
        var adapter = _registry.Method(config.PeftType).Attach(new AdapterTarget(Model, Architecture), config, adapterName);
        if ((adapter.OwnedModule is null) != (ActiveAdapter.OwnedModule is null))
        {
            throw new PeftConfigException($"Adapter '{adapterName}' ({config.PeftType}) cannot be combined with '{ActiveAdapterName}' ({PeftConfig.PeftType}) in one model.");
        }
        Register(adapter);
    }

    /// <summary>Makes <paramref name="adapterName"/> the adapter forward() uses.</summary>
    public void SetAdapter(string adapterName)
    {
        if (!_adapters.ContainsKey(adapterName)) throw new ArgumentException($"No adapter named '{adapterName}'; loaded: {string.Join(", ", _adapters.Keys)}.", nameof(adapterName));
        UnmergeFirst("Adapter cannot be set when the model is merged. Unmerging the model first.");
        Activate(adapterName);
    }

    /// <summary>
    /// Unmerges every merged layer, with a warning, before an operation that needs the base weights
    /// as they were (the reference's set_adapter and disabled forward do the same).
    /// </summary>
    private void UnmergeFirst(string warning)
    {
        var merged = Model.modules().OfType<IAdapterLayer>().Where(l => l.MergedAdapters.Count > 0).ToList();
        if (merged.Count == 0) return;
        PeftLog.Warn(warning);
        foreach (var layer in merged) layer.Unmerge();
    }

    private void Activate(string adapterName)
    {
        foreach (var adapter in _adapters.Values) adapter.SetActive(false);
        _adapters[adapterName].SetActive(true);
        ActiveAdapterName = adapterName;
    }

    /// <summary>
    /// Removes adapter <paramref name="adapterName"/> and its weights from every layer (delete_adapter). The
    /// active adapter cannot be deleted: make another active with <see cref="SetAdapter"/> first.
    /// </summary>
    /// <exception cref="ArgumentException">No adapter has that name.</exception>
    /// <exception cref="InvalidOperationException">It is the active adapter.</exception>
    public void DeleteAdapter(string adapterName)
    {
        if (!_adapters.TryGetValue(adapterName, out var adapter)) throw new ArgumentException($"No adapter named '{adapterName}'; loaded: {string.Join(", ", _adapters.Keys)}.", nameof(adapterName));
        if (adapterName == ActiveAdapterName)
        {
            throw new InvalidOperationException($"Adapter '{adapterName}' is the active adapter; call SetAdapter with another one ({string.Join(", ", _adapters.Keys.Where(k => k != adapterName).DefaultIfEmpty("none loaded"))}) before deleting it.");
        }
        adapter.Remove();
        if (adapter.OwnedModule is not null) prompt_encoder.Remove(adapterName);
        _adapters.Remove(adapterName);
    }

    private void Register(IAdapter adapter)
    {
        _adapters[adapter.Name] = adapter;
        if (adapter.OwnedModule is { } owned) prompt_encoder.Add(adapter.Name, owned);
    }

    /// <summary>Loads a saved adapter's weights into adapter <paramref name="adapterName"/> (the one loader: from_pretrained, load_adapter, Trainer resume).</summary>
    internal void LoadAdapterWeights(string adapterName, string adapterDirectory)
    {
        var path = Path.Combine(adapterDirectory, WeightsFileName);
        var pickled = Path.Combine(adapterDirectory, PickledWeightsFileName);
        if (!File.Exists(path) && File.Exists(pickled))
        {
            // A pickle can run arbitrary code on load, so it is never opened here.
            throw new CheckpointException(pickled, null,
                $"the adapter has only {PickledWeightsFileName} (a PyTorch pickle), which this library never opens (unpickling can run code). Convert it to " +
                $"{WeightsFileName} in Python: `from safetensors.torch import save_file; import torch; " +
                $"save_file(torch.load('{PickledWeightsFileName}', weights_only=True), '{WeightsFileName}', metadata={{'format': 'pt'}})`.");
        }
        var state = SafeTensors.Load(path);
        try
        {
            WarnAboutNonFinite(state, path);
            _adapters[adapterName].LoadStateDict(state, path);
        }
        finally
        {
            foreach (var tensor in state.Values) tensor.Dispose();
        }
    }

    /// <summary>
    /// A NaN or infinity in a saved adapter is loaded (the reference loads it too) but never silently: it poisons every
    /// output, and a safe merge would refuse it.
    /// </summary>
    private static void WarnAboutNonFinite(IReadOnlyDictionary<string, Tensor> state, string path)
    {
        var broken = state.Where(p => p.Value.is_floating_point() && !p.Value.isfinite().all().item<bool>()).Select(p => p.Key).ToList();
        if (broken.Count == 0) return;
        PeftLog.Warn($"{path}: tensor '{broken[0]}'{(broken.Count > 1 ? $" and {broken.Count - 1} other(s)" : "")} hold NaN or infinity; " +
            "the adapter's outputs will not be finite, and a safe merge (Merge(safeMerge: true), peft merge) refuses it.");
    }

    private void SetTrainable(string adapterName, bool trainable)
    {
        if (trainable)
        {
            _adapters[adapterName].MarkTrainable();
            return;
        }
        foreach (var parameter in parameters()) parameter.requires_grad = false;
        eval();
    }

    /// <inheritdoc />
    public override ModelOutputs forward(ModelInputs inputs)
    {
        // Inside Forward/Generate with per-row adapters (PeftModel.Routing.cs) the active adapter plays no part.
        if (AdapterRouting.Current is { } routing && routing.IsFor(this)) return RoutedForward(routing, inputs);
        var adapter = ActiveAdapter;
        return adapter.CompleteOutputs(Model.forward(adapter.Disabled ? inputs : adapter.PrepareInputs(inputs)));
    }

    /// <summary>Within the returned scope forward() runs the base model alone (disable_adapter()).</summary>
    public IDisposable DisableAdapter()
    {
        var adapter = ActiveAdapter;
        var was = adapter.Disabled;
        UnmergeFirst("The adapter is merged into the base weights; unmerging it so that the disabled model is the base model.");
        adapter.Disabled = true;
        return new Restore(() => adapter.Disabled = was);
    }

    /// <summary>Folds the active adapter into the base weights; forward() then runs at base-model cost.</summary>
    public void Merge() => Merge(safeMerge: false);

    /// <summary>Folds the active adapter into the base weights, checking each merged weight when <paramref name="safeMerge"/>.</summary>
    /// <param name="safeMerge">
    /// The reference's <c>safe_merge</c>: each merged weight is computed on a copy and a NaN or infinity refused with
    /// <see cref="NonFiniteMergeException"/> naming the adapter and layer, that layer left untouched.
    /// </param>
    public void Merge(bool safeMerge)
    {
        var adapter = Mergeable(ActiveAdapter);
        UntieBeforeMerging();
        adapter.Merge(safeMerge);
    }

    /// <summary>
    /// An adapter on the input embedding or on an output head whose weight the embedding shares would,
    /// merged, change both; the head gets its own copy first, so merged computes what adapted did.
    /// </summary>
    private void UntieBeforeMerging()
    {
        if (Model.TiedWeights.Count == 0) return;
        RefuseMergingIntoSharedEmbeddings();
        var onTiedPair = Model.InputEmbeddings is IAdapterLayer
            || (ActiveAdapter is TunerAdapter tuner && tuner.Layers.Any(l => Model.HeadModuleNames.Contains(l.Path)));
        if (onTiedPair) Model.UntieOutputEmbeddings();
    }

    /// <summary>
    /// An adapter on an embedding whose weight other embeddings share (T5's and BART's <c>shared</c> and the stacks'
    /// <c>embed_tokens</c>) cannot be merged so that merged computes what adapted did: the merged weight would change
    /// the others too (the reference merges anyway, into all of them), and a checkpoint cannot hold them apart, since
    /// transformers ties them again on load. Heads are untied instead (above).
    /// </summary>
    private void RefuseMergingIntoSharedEmbeddings()
    {
        if (ActiveAdapter is not TunerAdapter tuner) return;
        foreach (var (path, _) in tuner.Layers)
        {
            if (Model.HeadModuleNames.Contains(path)) continue;
            var weight = path + ".weight";
            var source = Model.TiedWeights.FirstOrDefault(t => t.Tied == weight || t.Source == weight).Source;
            if (source is null) continue;
            var sharers = Model.TiedWeights.Where(t => t.Source == source).Select(t => t.Tied).Append(source)
                .Where(n => n != weight && !Model.HeadModuleNames.Any(h => n == h + ".weight")).ToList();
            if (sharers.Count == 0) continue;
            throw new NotSupportedException(
                $"Adapter '{tuner.Name}' on '{path}' cannot be merged: its weight is also {string.Join(", ", sharers.Select(n => $"'{n}'"))}, "
                + "which merging would change as well (transformers ties them, so a saved checkpoint cannot keep them apart). "
                + "Use the adapter unmerged, or adapt these embeddings with modules_to_save.");
        }
    }

    /// <summary>The base model's <see cref="PreTrainedModel.GradientCheckpointingEnable"/> (PEFT forwards it to the base model too).</summary>
    /// <exception cref="NotSupportedException">The architecture does not implement gradient checkpointing.</exception>
    public void GradientCheckpointingEnable() => Model.GradientCheckpointingEnable();

    /// <summary>Takes a merged adapter back out of the base weights.</summary>
    public void Unmerge() => Mergeable(ActiveAdapter).Unmerge();

    /// <summary>
    /// Merges the active adapter and returns the base model without adapter layers (merge_and_unload).
    /// An adapter on an embedding the output head shares its weight with unties the head first, so
    /// the head keeps the base weights and the merged model computes what the adapted one did.
    /// </summary>
    public PreTrainedModel MergeAndUnload() => MergeAndUnload(safeMerge: false);

    /// <summary><see cref="MergeAndUnload()"/>, with the reference's <c>safe_merge</c> when <paramref name="safeMerge"/>.</summary>
    /// <param name="safeMerge">As <see cref="Merge(bool)"/>'s: a non-finite merged weight is refused and nothing is unloaded.</param>
    public PreTrainedModel MergeAndUnload(bool safeMerge)
    {
        var adapter = Mergeable(ActiveAdapter);
        UntieBeforeMerging();
        adapter.Merge(safeMerge);
        adapter.Unload(merge: true);
        _adapters.Clear();
        return Model;
    }

    /// <summary>
    /// Merges the active adapter and returns a dense model in <paramref name="dtype"/> (bfloat16, say): every quantized
    /// layer is first dequantized to it, the adapter is added there without requantization, the quantized layers become
    /// plain Linear layers, and every other floating-point parameter is cast to <paramref name="dtype"/> as well.
    /// </summary>
    /// <param name="dtype">The dtype of the dense model.</param>
    /// <param name="safeMerge">As <see cref="Merge(bool)"/>'s.</param>
    public PreTrainedModel MergeAndUnload(ScalarType dtype, bool safeMerge = false)
    {
        foreach (var quantized in modules().OfType<Quantization.QuantizedLinear>()) quantized.Densify(dtype);
        var model = MergeAndUnload(safeMerge);
        Quantization.ModelQuantization.Dequantize(model, dtype);
        Quantization.ModelQuantization.CastParameters(model, type => type.IsFloatingPointType() && type != dtype, dtype);
        return model;
    }

    /// <summary>Removes the adapter layers without merging (unload).</summary>
    public PreTrainedModel Unload()
    {
        Mergeable(ActiveAdapter).Unload(merge: false);
        _adapters.Clear();
        return Model;
    }

    private static IMergeable Mergeable(IAdapter adapter) =>
        adapter as IMergeable ?? throw new NotSupportedException($"{adapter.Config.PeftType} adapters cannot be merged into the base weights.");

    /// <summary>
    /// Writes adapter_config.json and adapter_model.safetensors with the reference's keys, into
    /// <paramref name="directory"/> for the default adapter and into a sub-directory named after any other.
    /// </summary>
    /// <remarks>
    /// The folder is replaced atomically (<see cref="AtomicDirectory"/>): a reader, or a save killed
    /// at any moment, leaves either the old adapters or the new ones, never a mix.
    /// </remarks>
    /// <param name="directory">The folder to write.</param>
    /// <param name="adapterNames">The adapters to save; all by default.</param>
    /// <param name="initialAdapterDirectory">
    /// The reference's <c>path_initial_model_for_weight_conversion</c>: where this PiSSA or OLoRA adapter was saved right
    /// after it was created, before training. The adapter is then written as a plain LoRA adapter of twice the rank for
    /// the unmodified base model (<see cref="ConvertedForInitialModel"/>), and that folder's config is set to
    /// <c>init_lora_weights: true</c>, as the reference does, so that loading it never decomposes the base again.
    /// </param>
    public void SavePretrained(string directory, IEnumerable<string>? adapterNames = null, string? initialAdapterDirectory = null)
    {
        var names = (adapterNames ?? _adapters.Keys).ToList();
        if (initialAdapterDirectory is not null && names.Count != 1)
        {
            throw new ArgumentException($"A conversion for the initial model applies to one adapter; {names.Count} were selected: name the one to convert.", nameof(adapterNames));
        }
        AtomicDirectory.Write(directory, staging => WriteAdapters(staging, names, initialAdapterDirectory));
        if (initialAdapterDirectory is not null) MarkInitialAdapterLoadable(initialAdapterDirectory);
    }

    private void WriteAdapters(string directory, IEnumerable<string> adapterNames, string? initialAdapterDirectory = null)
    {
        foreach (var name in adapterNames)
        {
            var adapter = _adapters[name];
            var target = name == DefaultAdapterName ? directory : Path.Combine(directory, name);
            Directory.CreateDirectory(target);
            // peft_version names the file format Python PEFT reads (it parses it as a version): the
            // one this library reproduces, not this library's own version.
            var config = adapter.Config with
            {
                InferenceMode = true,
                PeftVersion = adapter.Config.PeftVersion ?? ReferencePeftVersion,
                BaseModelNameOrPath = adapter.Config.BaseModelNameOrPath ?? Model.NameOrPath,
                AutoMapping = adapter.Config.TaskType is null ? AutoMapping() : adapter.Config.AutoMapping,
            };
            using var scope = torch.NewDisposeScope();
            var state = adapter.GetStateDict().ToDictionary(kv => kv.Key, kv => kv.Value.detach().cpu().contiguous());
            if (initialAdapterDirectory is not null) (config, state) = ConvertedForInitialModel(config, state, initialAdapterDirectory);
            File.WriteAllText(Path.Combine(target, ConfigFileName), PeftJson.Serialize(config));
            SafeTensors.Save(Path.Combine(target, WeightsFileName), state, new Dictionary<string, string> { ["format"] = "pt" });
        }
    }

    /// <summary>
    /// What the reference writes for an adapter without a task type: the base model's transformers
    /// class (config.json's first <c>architectures</c> entry, else the model's own class name) and its module.
    /// </summary>
    private Dictionary<string, string> AutoMapping()
    {
        var modelClass = Model.Config.Architectures?.FirstOrDefault() ?? Model.GetName();
        return new Dictionary<string, string>
        {
            ["base_model_class"] = modelClass,
            ["parent_library"] = Model.TransformersModule,
        };
    }

    /// <summary>
    /// Trainable and total parameter counts, each shared tensor counted once; a 4-bit weight counts as many values as it
    /// packs (the reference's ×2 rule for bitsandbytes' Params4bit; see <see cref="ParameterCounts.Of"/>).
    /// </summary>
    public (long Trainable, long All) GetNbTrainableParameters() => ParameterCounts.Of(this);

    /// <summary>The reference's line, e.g. <c>trainable params: 1,024 || all params: 32,640 || trainable%: 3.1373</c>.</summary>
    public string TrainableParametersLine()
    {
        var (trainable, all) = GetNbTrainableParameters();
        var culture = CultureInfo.InvariantCulture;
        return string.Format(culture, "trainable params: {0:N0} || all params: {1:N0} || trainable%: {2:F4}", trainable, all, 100.0 * trainable / all);
    }

    /// <summary>Prints <see cref="TrainableParametersLine"/> to standard output (print_trainable_parameters).</summary>
    public void PrintTrainableParameters() => Console.WriteLine(TrainableParametersLine());

    /// <summary>The parameters that train, with their names as the reference's named_parameters() gives them.</summary>
    public IEnumerable<(string Name, Parameter Parameter)> TrainableParameters() =>
        named_parameters().Where(p => p.parameter.requires_grad).Select(p => (p.name, p.parameter));

    private sealed class Restore(Action action) : IDisposable
    {
        public void Dispose() => action();
    }
}

/// <summary>The reference's tuner wrapper (<c>LoraModel</c> and kin): holds the model as <c>model</c>.</summary>
internal sealed class TunerModel : nn.Module
{
    private readonly nn.Module model;

    public TunerModel(nn.Module model) : base(nameof(TunerModel))
    {
        this.model = model;
        RegisterComponents();
    }
}
