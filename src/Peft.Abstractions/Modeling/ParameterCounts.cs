using TorchSharp;

namespace Peft.Modeling;

/// <summary>Parameter counts as the reference's get_nb_trainable_parameters gives them.</summary>
public static class ParameterCounts
{
    /// <summary>
    /// Trainable and total parameter counts of <paramref name="module"/>, each shared (tied) tensor counted once. A
    /// quantized layer's packed weight counts the values it holds (<see cref="IQuantizedLinear.ValuesPerStoredElement"/>):
    /// the reference counts a bitsandbytes Params4bit as <c>numel × 2 × element_size</c>.
    /// </summary>
    public static (long Trainable, long All) Of(torch.nn.Module module)
    {
        ArgumentNullException.ThrowIfNull(module);
        long trainable = 0, all = 0;
        var seen = new HashSet<IntPtr>();
        // A module reachable by two paths is listed twice.
        var packed = new Dictionary<IntPtr, int>();
        foreach (var q in module.modules().OfType<IQuantizedLinear>()) packed.TryAdd(q.StoredWeight.Handle, q.ValuesPerStoredElement);
        foreach (var parameter in module.parameters())
        {
            if (!seen.Add(parameter.Handle)) continue;
            var count = parameter.numel() * packed.GetValueOrDefault(parameter.Handle, 1);
            all += count;
            if (parameter.requires_grad) trainable += count;
        }
        return (trainable, all);
    }
}
