using TorchSharp;

namespace Peft;

/// <summary>A slot of a <see cref="IModuleSlots"/> module, by its dotted path from the model.</summary>
/// <param name="Path">The module's full name (<c>transformer.h.0.attn.c_attn</c>).</param>
/// <param name="Owner">The module that declares the slot.</param>
/// <param name="Slot">The slot's name in <paramref name="Owner"/>.</param>
public readonly record struct ModuleSlot(string Path, IModuleSlots Owner, string Slot)
{
    /// <summary>The module in the slot now.</summary>
    public torch.nn.Module<torch.Tensor, torch.Tensor> Module => Owner.GetSlot(Slot);

    /// <summary>Puts <paramref name="module"/> in the slot.</summary>
    public void Replace(torch.nn.Module<torch.Tensor, torch.Tensor> module) => Owner.ReplaceSlot(Slot, module);

    /// <summary>
    /// Every slot of <paramref name="model"/> and its submodules, in module order: the one walk from
    /// named_modules through <see cref="IModuleSlots"/> to dotted paths that methods and adapters share.
    /// </summary>
    public static IEnumerable<ModuleSlot> All(torch.nn.Module model)
    {
        var owners = new List<(string, torch.nn.Module)> { ("", model) };
        owners.AddRange(model.named_modules());
        foreach (var (prefix, module) in owners)
        {
            if (module is not IModuleSlots slots) continue;
            foreach (var slot in slots.SlotNames) yield return new(prefix.Length == 0 ? slot : prefix + "." + slot, slots, slot);
        }
    }
}
