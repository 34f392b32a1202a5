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
/// <item><see cref="TryAddToLayer"/>: add a further named adapter to a layer this method made;</item>
/// <item>optionally <see cref="DefaultTargets"/>, <see cref="IsLinearForAllLinear"/> and <see cref="CreateAdapter"/>.</item>
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
    public PeftConfig ParseConfig(JsonElement json, string source)
    {
        try
        {
            return json.Deserialize<TConfig>(PeftJson.Options) ?? throw new PeftConfigException($"{source}: empty adapter config.");
        }
        catch (JsonException e)
        {
            throw new PeftConfigException($"{source}: {e.Message}");
        }
    }

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

    /// <summary>Whether a layer of this shape counts as linear for <c>"all-linear"</c>.</summary>
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
        var slots = EnumerateSlots(model).ToList();
        var targets = ResolveTargets(typed, target, slots);

        var wrapped = new List<(string Path, IAdapterLayer Layer)>();
        foreach (var (path, owner, slotName) in slots)
        {
            // A module matches under its run-time name or its classic one (adapters saved under transformers 4).
            var names = NamesOf(model, path);
            if (!names.Any(targets.Matches) || names.Any(n => typed.ExcludeModules?.Matches(n) ?? false) || !names.Any(n => InSelectedLayer(typed, n))) continue;
            if (typed.ModulesToSave?.Any(m => names.Any(n => NameMatches(n, m))) ?? false) continue;
            var current = owner.GetSlot(slotName);
            if (!TryAddToLayer(current, typed, adapterName, path))
            {
                var layer = CreateLayer(current, LayerShape.Of(current), typed, adapterName, path)
                    ?? throw new PeftConfigException(
                        $"Target module '{path}' is a {current.GetType().Name}, which {PeftType} does not support.");
                owner.ReplaceSlot(slotName, layer);
                current = layer;
            }
            wrapped.Add((path, (IAdapterLayer)current));
        }
        if (wrapped.Count == 0)
        {
            var examples = string.Join(", ", slots.Take(8).Select(s => s.Path));
            throw new PeftConfigException(
                $"target_modules {targets} matched no module of the {target.Architecture.ModelType} model. Modules that can be targeted include: {examples}.");
        }

        var saved = WrapModulesToSave(model, typed, target, adapterName, slots);
        // Saved as the reference saves it: the defaults by name, "all-linear" expanded to the modules it chose.
        var applied = typed.TargetModules is null || typed.TargetModules.IsAllLinear ? typed with { TargetModules = targets } : typed;
        return CreateAdapter(model, adapterName, (TConfig)applied, wrapped, saved);
    }

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

    private static IEnumerable<(string Path, IModuleSlots Owner, string Slot)> EnumerateSlots(PreTrainedModel model)
    {
        var owners = new List<(string, nn.Module)> { ("", model) };
        owners.AddRange(model.named_modules());
        foreach (var (prefix, module) in owners)
        {
            if (module is not IModuleSlots slots) continue;
            foreach (var slot in slots.SlotNames)
            {
                yield return (prefix.Length == 0 ? slot : prefix + "." + slot, slots, slot);
            }
        }
    }

    private TargetModules ResolveTargets(TConfig config, AdapterTarget target, List<(string Path, IModuleSlots Owner, string Slot)> slots)
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
        if (config.LayersToTransform is null) return true;
        var pattern = config.LayersPattern is null
            ? LayerIndex
            : new Regex($@"\.{Regex.Escape(config.LayersPattern)}\.(\d+)(?:\.|$)", RegexOptions.CultureInvariant);
        var match = pattern.Match("." + path);
        return match.Success && config.LayersToTransform.Contains(int.Parse(match.Groups[1].Value));
    }

    /// <summary>The module's run-time name, and its classic name where the architecture renamed it.</summary>
    private static string[] NamesOf(PreTrainedModel model, string path) =>
        model.ClassicNames.ToClassic(path) is var classic && classic != path ? [path, classic] : [path];

    private static bool NameMatches(string path, string name) => path == name || path.EndsWith("." + name, StringComparison.Ordinal);

    private static List<(string Path, ModulesToSaveWrapper Wrapper)> WrapModulesToSave(
        PreTrainedModel model, TConfig config, AdapterTarget target, string adapterName,
        List<(string Path, IModuleSlots Owner, string Slot)> slots)
    {
        var result = new List<(string, ModulesToSaveWrapper)>();
        if (config.ModulesToSave is not { Count: > 0 } names) return result;
        foreach (var (path, owner, slot) in slots)
        {
            var aliases = NamesOf(model, path);
            if (!names.Any(n => aliases.Any(a => NameMatches(a, n)))) continue;
            var current = owner.GetSlot(slot);
            if (current is not ModulesToSaveWrapper wrapper)
            {
                wrapper = new ModulesToSaveWrapper(current);
                owner.ReplaceSlot(slot, wrapper);
            }
            wrapper.AddAdapter(adapterName);
            result.Add((path, wrapper));
        }
        return result;
    }
}
