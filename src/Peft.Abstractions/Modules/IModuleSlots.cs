using TorchSharp;
using static TorchSharp.torch;

namespace Peft;

/// <summary>
/// Implemented by the source generator for every <c>[TargetModules]</c> class: the child modules
/// an adapter may replace, and a way to replace one by name.
/// </summary>
public interface IModuleSlots
{
    /// <summary>The slot names, in declaration order.</summary>
    IReadOnlyList<string> SlotNames { get; }

    /// <summary>The module currently in the slot <paramref name="name"/>.</summary>
    /// <exception cref="ArgumentException">No slot has that name.</exception>
    nn.Module<Tensor, Tensor> GetSlot(string name);

    /// <summary>
    /// Puts <paramref name="module"/> in the slot <paramref name="name"/>: the field forward()
    /// reads and the registered submodule change together, keeping the registration order.
    /// </summary>
    /// <exception cref="ArgumentException">No slot has that name.</exception>
    void ReplaceSlot(string name, nn.Module<Tensor, Tensor> module);
}
