using System.Text.Json;
using System.Text.RegularExpressions;
using Peft.Modeling;
using Peft.Plugins;
using TorchSharp;
using static TorchSharp.torch;

namespace Peft.Tuners;

/// <summary>
/// Template for methods that replace target layers with adapter layers (the reference's
/// <c>BaseTuner</c>). <see cref="Attach"/> walks every <c>[TargetModules]</c> class in the model,
/// matches each slot's full name against the config, and asks the derived method for a layer.
/// </summary>
/// <remarks>
/// A new method overrides:
/// <list type="bullet">
/// <item><see cref="PeftType"/> and <see cref="ParameterPrefix"/> (e.g. <c>"lora_"</c>): saved keys are the parameters whose names contain the prefix;</item>
/// <item><see cref="CreateLayer"/>: wrap a base layer, or return null when the kind is unsupported;</item>
/// <item><see cref="TryAddToLayer"/>: add a further named adapter to a layer this method made
/// (a method with one layer type derives from <see cref="TunerMethod{TConfig, TLayer}"/>, which writes these two);</item>
/// <item>optionally <see cref="DefaultTargets"/>, <see cref="IsLinearForAllLinear"/> and <see cref="CreateAdapter"/>;</item>
/// <item>optionally <see cref="BeforeInjection"/>, for state shared by all of an adapter's layers (VeRA).</item>
/// </list>
/// LoRA (<c>Peft.Methods/Lora</c>) is the worked example.
/// </remarks>
public abstract class TunerMethod<TConfig> : IPeftMethod where TConfig : TunerConfig
{
    private static readonly Regex LayerIndex = new(@"\.(?:layers|h|block|blocks|layer)\.(\d+)(?:\.|$)", RegexOptions.CultureInvariant);

    /// <inheritdoc />
    public abstract PeftType PeftType { get; }

    /// <summary>The prefix every adapter parameter name carries (<c>"lora_"</c>).</summary>
    public abstract string ParameterPrefix { get; }

    /// <inheritdoc />
    public PeftConfig ParseConfig(JsonElement json, string source) => PeftConfig.Parse<TConfig>(json, source);

    /// <summary>
    /// The architecture's default-target tables this method reads, the first one declared wins: its
    /// own <c>peft_type</c> by default. A method whose reference table is a copy of LoRA's (LoHa,
    /// LoKr, VeRA, ...) returns <c>[PeftType.Name, "LORA"]</c>, so architectures need no entry for it
    /// unless theirs differs.
    /// </summary>
    protected virtual IReadOnlyList<string> DefaultTargetsTables => [PeftType.Name];

    /// <summary>Targets used when the config names none: the first of <see cref="DefaultTargetsTables"/> the architecture declares, else none.</summary>
    protected virtual IReadOnlyList<string> DefaultTargets(IArchitecture architecture)
    {
        foreach (var table in DefaultTargetsTables)
        {
            if (architecture.DefaultTargets.TryGetValue(table, out var names)) return names;
        }
        return [];
    }

    /// <summary>
    /// Fills in what the config leaves to the architecture before it is validated (IA3 takes its
    /// feed-forward modules from the architecture's <c>"IA3_FEEDFORWARD"</c> table); unchanged by default.
    /// </summary>
    /// <param name="config">The config as given.</param>
    /// <param name="target">The model and its architecture.</param>
    protected virtual TConfig PrepareConfig(TConfig config, AdapterTarget target) => config;

    /// <summary>
    /// Whether this method's layers may wrap a quantized base (<see cref="IQuantizedLinear"/>): read its weight dequantized
    /// and merge only through AdapterLayer's base-weight writers. False by default: targeting a quantized layer is refused.
    /// </summary>
    protected virtual bool SupportsQuantizedBase => false;

    /// <summary>Whether a layer of <paramref name="shape"/> counts as linear for <c>target_modules="all-linear"</c>.</summary>
    protected virtual bool IsLinearForAllLinear(LayerShape shape) => shape.Kind is SlotKind.Linear or SlotKind.Conv1D;

    /// <summary>Wraps <paramref name="baseLayer"/> in this method's layer, or returns null when its kind is not supported.</summary>
    /// <param name="baseLayer">The layer found in the slot.</param>
    /// <param name="shape">Its kind and sizes.</param>
    /// <param name="config">The adapter's config.</param>
    /// <param name="adapterName">The adapter's name.</param>
    /// <param name="path">The slot's full dotted name, for error messages and per-module patterns.</param>
    protected abstract nn.Module<Tensor, Tensor>? CreateLayer(nn.Module<Tensor, Tensor> baseLayer, LayerShape shape, TConfig config, string adapterName, string path);

    /// <summary>Adds a further adapter to <paramref name="existing"/> when it is one of this method's layers.</summary>
    protected abstract bool TryAddToLayer(nn.Module<Tensor, Tensor> existing, TConfig config, string adapterName, string path);

    /// <summary>
    /// Called once per <see cref="Attach"/>, after the targets are matched and before any layer is made (the
    /// reference's <c>_pre_injection_hook</c>). A method whose layers share state across the model (VeRA's frozen
    /// projections, sized by the largest target) builds it here and returns a config carrying it, which
    /// <see cref="CreateLayer"/> and <see cref="TryAddToLayer"/> then receive. The default returns
    /// <paramref name="config"/>.
    /// </summary>
    /// <param name="target">The model being adapted.</param>
    /// <param name="config">The validated config.</param>
    /// <param name="adapterName">The adapter's name.</param>
    /// <param name="targets">Every slot that will get a layer: its full dotted name and its base layer's shape.</param>
    protected virtual TConfig BeforeInjection(AdapterTarget target, TConfig config, string adapterName, IReadOnlyList<(string Path, LayerShape Shape)> targets) => config;

    /// <inheritdoc />
    public IAdapter Attach(AdapterTarget target, PeftConfig config, string adapterName)
    {
        if (config is not TConfig typed)
        {
            throw new PeftConfigException($"{PeftType} cannot use a {config.GetType().Name}.");
        }
        typed = PrepareConfig(typed, target);
        typed.Validate();
        var model = target.Model;
        var slots = ModuleSlot.All(model).ToList();
        var targets = ResolveTargets(typed, target, slots);
        var modules = ModelModules(model);
        CheckModulesToSave(typed, target, slots, modules);

        // A module matches under its run-time name or its classic one (adapters saved under transformers 4).
        var matched = slots.Where(s => NamesOf(model, s.Path) is var names && names.Any(targets.Matches) && !Skipped(typed, names)).ToList();
        if (matched.Count == 0)
        {
            // Projections first: they are what a target usually means to name.
            var examples = string.Join(", ", slots.OrderBy(s => LayerShape.Of(s.Owner.GetSlot(s.Slot)).Kind is SlotKind.Linear or SlotKind.Conv1D ? 0 : 1).Take(8).Select(s => s.Path));
            throw new PeftConfigException(
                $"target_modules {targets} matched no module of the {target.Architecture.ModelType} model. Modules that can be targeted include: {examples}.");
        }
        typed = BeforeInjection(target, typed, adapterName, matched.Select(s => (s.Path, LayerShape.Of(s.Owner.GetSlot(s.Slot)))).ToList());

        var wrapped = new List<(string Path, IAdapterLayer Layer)>();
        foreach (var (path, owner, slotName) in matched)
        {
            var current = owner.GetSlot(slotName);
            if ((current is IAdapterLayer held ? held.BaseLayer : current) is IQuantizedLinear quantized && !SupportsQuantizedBase)
            {
                throw new PeftConfigException($"Target module '{path}' is quantized ({quantized.Format}); {PeftType} does not support a quantized base layer here (LoRA does).");
            }
            if (!TryAddToLayer(current, typed, adapterName, path))
            {
                var layer = CreateLayer(current, LayerShape.Of(current), typed, adapterName, path)
                    ?? throw new PeftConfigException(
                        $"Target module '{path}' is a {TypeName(current)}, which {PeftType} does not support.");
                owner.ReplaceSlot(slotName, layer);
                current = layer;
            }
            wrapped.Add((path, (IAdapterLayer)current));
        }
        if (typed.TargetModules is { IsAllLinear: false } given) CheckEveryTargetWrapped(typed, given, target, modules, wrapped);

        var saved = WrapModulesToSave(model, typed, adapterName, slots);
        // Saved as the reference saves it: the defaults by name, "all-linear" expanded to the modules it chose.
        var applied = typed.TargetModules is null || typed.TargetModules.IsAllLinear ? typed with { TargetModules = targets } : typed;
        return CreateAdapter(model, adapterName, (TConfig)applied, wrapped, saved);
    }

    /// <summary>
    /// Modules a target never wraps: excluded ones, those outside layers_to_transform, and (as the
    /// reference) modules_to_save modules and everything inside them, which are trained in full.
    /// </summary>
    private static bool Skipped(TConfig config, string[] names) =>
        names.Any(n => (config.ExcludeModules?.Matches(n) ?? false) || (config.ModulesToSave?.Any(m => IsWithin(n, m)) ?? false))
        || !names.Any(n => InSelectedLayer(config, n));

    /// <summary>Whether <paramref name="path"/> is the module <paramref name="name"/> names, or inside it.</summary>
    private static bool IsWithin(string path, string name)
    {
        for (int end = path.IndexOf('.'); ; end = path.IndexOf('.', end + 1))
        {
            var prefix = end < 0 ? path : path[..end];
            if (NameMatches(prefix, name)) return true;
            if (end < 0) return false;
        }
    }

    /// <summary>
    /// Every module the user's target_modules names must have been wrapped (or be deliberately
    /// skipped): a name that matches nothing, or a module that is not an adapter slot of a kind this
    /// method supports, is an error naming it and its type, never silently dropped.
    /// </summary>
    private void CheckEveryTargetWrapped(TConfig config, TargetModules targets, AdapterTarget target,
        List<(string Path, nn.Module Module)> modules, List<(string Path, IAdapterLayer Layer)> wrapped)
    {
        var done = wrapped.Select(w => w.Path).ToHashSet(StringComparer.Ordinal);
        foreach (var (path, module) in modules)
        {
            var names = NamesOf(target.Model, path);
            if (done.Contains(path) || !names.Any(targets.Matches) || Skipped(config, names)) continue;
            throw new PeftConfigException(
                $"target_modules {targets} matches '{path}', a {TypeName(module)}, which {PeftType} cannot wrap in the {target.Architecture.ModelType} architecture " +
                "(adapters go on the Linear, Conv1D and Embedding modules the architecture declares as adapter slots); name the layers inside it, or leave it out.");
        }
        foreach (var name in targets.Names ?? [])
        {
            if (done.Concat(modules.Select(m => m.Path)).Any(p => NamesOf(target.Model, p).Any(a => NameMatches(a, name)))) continue;
            throw new PeftConfigException(
                $"target_modules entry '{name}' matches no module of the {target.Architecture.ModelType} model. Modules that can be targeted include: {string.Join(", ", done.Take(8))}.");
        }
    }

    /// <summary>modules_to_save names must each match a replaceable module (those the reference adds for the task may match nothing).</summary>
    private void CheckModulesToSave(TConfig config, AdapterTarget target, List<ModuleSlot> slots,
        List<(string Path, nn.Module Module)> modules)
    {
        var optional = (config.TaskType ?? target.Model.Task).HeadModulesToSave;
        foreach (var name in config.ModulesToSave ?? [])
        {
            if (slots.Any(s => NamesOf(target.Model, s.Path).Any(a => NameMatches(a, name)))) continue;
            var matches = modules.Where(m => NamesOf(target.Model, m.Path).Any(a => NameMatches(a, name))).ToList();
            if (matches.Count == 0)
            {
                if (optional.Contains(name)) continue;
                throw new PeftConfigException($"modules_to_save entry '{name}' matches no module of the {target.Architecture.ModelType} model.");
            }
            throw new PeftConfigException(
                $"modules_to_save entry '{name}' matches '{matches[0].Path}', a {TypeName(matches[0].Module)}, which the {target.Architecture.ModelType} architecture " +
                "does not declare as a replaceable module (slot), so no trainable copy can take its place.");
        }
    }

    /// <summary>The model's modules by full name, leaving out the insides of adapter layers and modules_to_save wrappers.</summary>
    private static List<(string Path, nn.Module Module)> ModelModules(PreTrainedModel model)
    {
        var result = new List<(string, nn.Module)>();
        var wrappers = new List<string>();
        foreach (var (path, module) in model.named_modules())
        {
            if (path.Length == 0 || wrappers.Any(w => path.StartsWith(w + ".", StringComparison.Ordinal))) continue;
            result.Add((path, module));
            if (module is IAdapterLayer or ModulesToSaveWrapper) wrappers.Add(path);
        }
        return result;
    }

    /// <summary>The reference's name for a module's type (what modules.txt lists), looking through adapter layers.</summary>
    private static string TypeName(nn.Module module) => module switch
    {
        IAdapterLayer adapter => TypeName(adapter.BaseLayer),
        ModulesToSaveWrapper wrapper => TypeName(wrapper.Original),
        _ => module.GetName() is { Length: > 0 } name ? name : module.GetType().Name,
    };

    /// <summary>
    /// Makes the adapter <see cref="Attach"/> returns over the wrapped layers. Override to return a
    /// <see cref="TunerAdapter"/> subclass when the adapter does more than its layers (LoRA renames
    /// DoRA's saved keys, AdaLoRA adds a regulariser and a rank allocator).
    /// </summary>
    /// <param name="model">The adapted model.</param>
    /// <param name="adapterName">The adapter's name.</param>
    /// <param name="config">The config as applied (default targets written out).</param>
    /// <param name="layers">The wrapped layers by full module name.</param>
    /// <param name="saved">The modules_to_save wrappers by full module name.</param>
    protected virtual TunerAdapter CreateAdapter(PreTrainedModel model, string adapterName, TConfig config,
        IReadOnlyList<(string Path, IAdapterLayer Layer)> layers, IReadOnlyList<(string Path, ModulesToSaveWrapper Wrapper)> saved) =>
        new(model, adapterName, config, ParameterPrefix, layers, saved);

    private TargetModules ResolveTargets(TConfig config, AdapterTarget target, List<ModuleSlot> slots)
    {
        var targets = config.TargetModules;
        if (targets is null)
        {
            var defaults = DefaultTargets(target.Architecture);
            if (defaults.Count == 0)
            {
                throw new PeftConfigException(
                    $"target_modules is not set and the {target.Architecture.ModelType} architecture declares no default targets for {PeftType}.");
            }
            return TargetModules.FromNames(defaults);
        }
        if (!targets.IsAllLinear) return targets;

        var heads = target.Model.HeadModuleNames;
        var linear = slots
            .Where(s => !heads.Contains(s.Path))
            .Where(s => IsLinearForAllLinear(LayerShape.Of(s.Owner.GetSlot(s.Slot))))
            .Select(s => s.Path);
        return TargetModules.FromNames(linear);
    }

    private static bool InSelectedLayer(TConfig config, string path)
    {
        var (indices, layersPattern) = config.SelectedLayers;
        if (indices is null) return true;
        var pattern = layersPattern is null
            ? LayerIndex
            : new Regex($@"\.{Regex.Escape(layersPattern)}\.(\d+)(?:\.|$)", RegexOptions.CultureInvariant);
        var match = pattern.Match("." + path);
        return match.Success && indices.Contains(int.Parse(match.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture));
    }

    /// <summary>The module's run-time name, and its classic name where the architecture renamed it.</summary>
    private static string[] NamesOf(PreTrainedModel model, string path) =>
        model.ClassicNames.ToClassic(path) is var classic && classic != path ? [path, classic] : [path];

    private static bool NameMatches(string path, string name) => path == name || path.EndsWith("." + name, StringComparison.Ordinal);

    private static List<(string Path, ModulesToSaveWrapper Wrapper)> WrapModulesToSave(
        PreTrainedModel model, TConfig config, string adapterName, List<ModuleSlot> slots) =>
        config.ModulesToSave is not { Count: > 0 } names
            ? []
            : ModulesToSave.Wrap(slots.Where(s => names.Any(n => NamesOf(model, s.Path).Any(a => NameMatches(a, n)))).ToList(), adapterName);
}
