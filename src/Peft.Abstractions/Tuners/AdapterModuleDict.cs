using TorchSharp;

namespace Peft.Tuners;

/// <summary>
/// Modules keyed by adapter name, registered as children so parameter names come out as
/// <c>lora_A.default.weight</c>. Written because TorchSharp's <c>ModuleDict.Add</c> does not
/// register what it adds after construction (its parameters would be invisible to optimizers and
/// state dicts), and it cannot unregister on removal.
/// </summary>
public sealed class AdapterModuleDict<T> : torch.nn.Module where T : torch.nn.Module
{
    private readonly Dictionary<string, T> _items = new(StringComparer.Ordinal);

    /// <summary>An empty dictionary.</summary>
    public AdapterModuleDict() : base(nameof(AdapterModuleDict<T>))
    {
    }

    /// <summary>The module stored under <paramref name="name"/>.</summary>
    public T this[string name] => _items[name];

    /// <summary>Names in insertion order of registration.</summary>
    public IReadOnlyCollection<string> Names => _items.Keys;

    /// <summary>Adds and registers <paramref name="module"/> under <paramref name="name"/>.</summary>
    public void Add(string name, T module)
    {
        _items.Add(name, module);
        _internal_submodules.Add(name, module);
    }

    /// <summary>Looks up a module by name.</summary>
    public bool TryGetValue(string name, out T module) => _items.TryGetValue(name, out module!);

    /// <summary>Whether a module is stored under <paramref name="name"/>.</summary>
    public bool ContainsKey(string name) => _items.ContainsKey(name);

    /// <summary>Removes, unregisters and disposes the module stored under <paramref name="name"/>.</summary>
    public bool Remove(string name)
    {
        if (!_items.Remove(name, out var module)) return false;
        _internal_submodules.Remove(name);
        module.Dispose();
        return true;
    }
}
