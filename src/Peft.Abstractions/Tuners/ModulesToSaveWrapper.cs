using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Peft.Tuners;

/// <summary>
/// Keeps the original module and a trainable copy per adapter (the reference's
/// <c>ModulesToSaveWrapper</c>): <c>score.original_module.weight</c> and
/// <c>score.modules_to_save.default.weight</c>.
/// </summary>
public sealed class ModulesToSaveWrapper : nn.Module<Tensor, Tensor>
{
#pragma warning disable IDE1006 // Hugging Face's module names
    private readonly nn.Module<Tensor, Tensor> original_module;
    private readonly AdapterModuleDict<nn.Module<Tensor, Tensor>> modules_to_save = new();
#pragma warning restore IDE1006

    /// <summary>Wraps <paramref name="original"/>.</summary>
    public ModulesToSaveWrapper(nn.Module<Tensor, Tensor> original) : base(nameof(ModulesToSaveWrapper))
    {
        original_module = original;
        RegisterComponents();
    }

    /// <summary>The module as it was before wrapping.</summary>
    public nn.Module<Tensor, Tensor> Original => original_module;

    /// <summary>The adapter whose copy forward() uses; null runs the original.</summary>
    public string? ActiveAdapter { get; set; }

    /// <summary>When true forward() runs the original.</summary>
    public bool Disabled { get; set; }

    /// <summary>The copies, by adapter name.</summary>
    public AdapterModuleDict<nn.Module<Tensor, Tensor>> Copies => modules_to_save;

    /// <summary>Adds a trainable copy of the original for <paramref name="adapterName"/>; forward() uses it once its adapter is activated.</summary>
    public void AddAdapter(string adapterName) => modules_to_save.Add(adapterName, ModuleCloner.Clone(original_module));

    /// <summary>
    /// The module forward() runs now: the active adapter's copy, or the original. A model whose head
    /// takes other inputs than one tensor (SegFormer's decode head) calls it through this.
    /// </summary>
    /// <exception cref="NotSupportedException">The call routes rows to adapters with different copies (see <see cref="AdapterRouting"/>).</exception>
    public nn.Module<Tensor, Tensor> Current
    {
        get
        {
            if (AdapterRouting.Current is { } routing)
            {
                var modules = routing.Groups.Select(g => For(g.Adapter)).Distinct().ToList();
                return modules.Count == 1 ? modules[0] : throw new NotSupportedException(
                    "This model calls its modules_to_save copy in a way that cannot mix adapters per row; send one adapter per call.");
            }
            return !Disabled && ActiveAdapter is { } name && modules_to_save.TryGetValue(name, out var copy) ? copy : original_module;
        }
    }

    /// <summary>The copy of <paramref name="adapterName"/>, or the original when it has none (or is the base model).</summary>
    private nn.Module<Tensor, Tensor> For(string adapterName) =>
        modules_to_save.TryGetValue(adapterName, out var copy) ? copy : original_module;

    /// <inheritdoc />
    /// <remarks>Under an <see cref="AdapterRouting"/> each adapter's rows go through its own copy (the reference's mixed batch).</remarks>
    public override Tensor forward(Tensor input)
    {
        if (AdapterRouting.Current is not { } routing) return Current.call(input);
        if (routing.Groups.All(g => !modules_to_save.ContainsKey(g.Adapter))) return original_module.call(input);
        routing.CheckRows(input, $"modules_to_save over {original_module.GetType().Name}");
        return RowRouting.MapGroups(routing, input, (group, rows) => For(group.Adapter).call(rows));
    }
}

/// <summary>What tuner and prompt-learning adapters do alike with their modules_to_save copies.</summary>
public static class ModulesToSave
{
    /// <summary>Wraps each slot (unless a wrapper is there already) and adds a trainable copy for <paramref name="adapterName"/>.</summary>
    /// <param name="slots">The slots modules_to_save names.</param>
    /// <param name="adapterName">The adapter the copies belong to.</param>
    public static List<(string Path, ModulesToSaveWrapper Wrapper)> Wrap(IEnumerable<ModuleSlot> slots, string adapterName)
    {
        var result = new List<(string, ModulesToSaveWrapper)>();
        foreach (var slot in slots)
        {
            if (slot.Module is not ModulesToSaveWrapper wrapper)
            {
                wrapper = new ModulesToSaveWrapper(slot.Module);
                slot.Replace(wrapper);
            }
            wrapper.AddAdapter(adapterName);
            result.Add((slot.Path, wrapper));
        }
        return result;
    }

    /// <summary>Points each wrapper at <paramref name="adapterName"/>'s copy, or (inactive) back at the original if it used that copy.</summary>
    public static void SetActive(IEnumerable<(string Path, ModulesToSaveWrapper Wrapper)> saved, string adapterName, bool active)
    {
        foreach (var (_, wrapper) in saved)
        {
            if (active) wrapper.ActiveAdapter = adapterName;
            else if (wrapper.ActiveAdapter == adapterName) wrapper.ActiveAdapter = null;
        }
    }

    /// <summary>Removes <paramref name="adapterName"/>'s copy from each wrapper.</summary>
    public static void Remove(IEnumerable<(string Path, ModulesToSaveWrapper Wrapper)> saved, string adapterName)
    {
        foreach (var (_, wrapper) in saved) wrapper.Copies.Remove(adapterName);
    }
}

/// <summary>Copies the layer types that modules_to_save wraps, weights included, without reflection.</summary>
public static class ModuleCloner
{
    /// <summary>A deep copy of <paramref name="module"/> with its own parameters.</summary>
    /// <exception cref="NotSupportedException">The module type has no cloner.</exception>
    public static nn.Module<Tensor, Tensor> Clone(nn.Module<Tensor, Tensor> module)
    {
        using var noGrad = torch.no_grad();
        if (module is ICloneableModule cloneable) return cloneable.Clone();
        nn.Module<Tensor, Tensor> copy = module switch
        {
            Linear l => nn.Linear(l.weight!.shape[1], l.weight!.shape[0], hasBias: l.bias is not null),
            Layers.Conv1D c => new Layers.Conv1D(c.weight.shape[0], c.weight.shape[1]),
            Embedding e => Layers.Embeddings.Create(e.weight!.shape[0], e.weight!.shape[1], Layers.Embeddings.PaddingIndexOf(e)),
            LayerNorm n => nn.LayerNorm(n.normalized_shape, n.eps, elementwise_affine: n.weight is not null),
            // A CNN's BatchNorm (PEFT's advice for such models: modules_to_save it, so its running statistics travel with the adapter).
            BatchNorm2d b => nn.BatchNorm2d(b.num_features, b.eps, b.momentum ?? 0.1, affine: b.weight is not null, track_running_stats: b.running_mean is not null),
            _ => throw new NotSupportedException(
                $"modules_to_save cannot copy a {module.GetType().Name}; supported: Linear, Conv1D, Embedding, LayerNorm, BatchNorm2d, and modules implementing ICloneableModule."),
        };
        var source = module.state_dict();
        foreach (var (name, tensor) in copy.state_dict()) tensor.copy_(source[name]);
        copy.train(module.training);
        return PlacedLike(copy, module);
    }

    /// <summary>Moves <paramref name="copy"/> to <paramref name="original"/>'s device and floating-point dtype (a copy of a bf16 head on a GPU stays there, in bf16).</summary>
    public static T PlacedLike<T>(T copy, nn.Module original) where T : nn.Module
    {
        var first = original.parameters().FirstOrDefault();
        if (first is null) return copy;
        copy.to(first.device, first.dtype);
        return copy;
    }
}

/// <summary>
/// A composite module (a classification head with several layers) that can copy itself, weights
/// included, so <c>modules_to_save</c> can keep a trainable copy of it.
/// </summary>
public interface ICloneableModule
{
    /// <summary>A deep copy with its own parameters, equal in value and dtype.</summary>
    nn.Module<Tensor, Tensor> Clone();
}
