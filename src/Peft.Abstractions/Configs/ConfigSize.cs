namespace Peft;

/// <summary>What bounds a configured size from above, in the weights file it must describe.</summary>
public enum SizeBound
{
    /// <summary>Only positivity is checked (head counts, position limits of rotary models).</summary>
    None,

    /// <summary>A tensor has a dimension this long (vocabulary, hidden and feed-forward sizes, adapter ranks).</summary>
    TensorDimension,

    /// <summary>Layers are numbered in the tensor names (<c>h.0.</c>, <c>layers.11.</c>), up to this count minus one.</summary>
    LayerCount,
}

/// <summary>One size a config declares: its key in the JSON file, its value, and what bounds it in the weights.</summary>
/// <param name="Key">The key in config.json or adapter_config.json.</param>
/// <param name="Value">The value read.</param>
/// <param name="Bound">What the weights file must hold for the value to be believable.</param>
public readonly record struct ConfigSize(string Key, long Value, SizeBound Bound = SizeBound.None);

/// <summary>
/// Checks declared sizes before anything is allocated: positive, and no larger than the weights file can back. A
/// hostile or corrupt config (vocab_size 3·10^7, n_layer 10^5, r 10^6 beside a 4 KB adapter) is refused by key in
/// microseconds, instead of building gigabytes of tensors that the weights would not fill anyway.
/// </summary>
public static class ConfigSizes
{
    /// <summary>The first size that is not positive, as a message naming the key, or null.</summary>
    /// <param name="sizes">The declared sizes.</param>
    public static string? NonPositive(IEnumerable<ConfigSize> sizes) =>
        sizes.Where(s => s.Value <= 0).Select(s => $"at key '{s.Key}': must be positive, got {s.Value}.").FirstOrDefault();

    /// <summary>The first size that the tensors of a weights file cannot back, as a message naming the key and file, or null.</summary>
    /// <param name="sizes">The declared sizes.</param>
    /// <param name="weightsSource">The weights file or folder, for the message.</param>
    /// <param name="tensors">Every tensor's name and shape, from the file's header.</param>
    public static string? Unbacked(IEnumerable<ConfigSize> sizes, string weightsSource, IReadOnlyCollection<(string Name, IReadOnlyList<long> Shape)> tensors)
    {
        long? largestDimension = null, layers = null;
        foreach (var size in sizes)
        {
            switch (size.Bound)
            {
                case SizeBound.TensorDimension:
                    largestDimension ??= tensors.SelectMany(t => t.Shape).DefaultIfEmpty(0).Max();
                    if (size.Value > largestDimension)
                    {
                        return $"at key '{size.Key}': {size.Value} is larger than every dimension of the {tensors.Count} tensors in {weightsSource} " +
                            $"(the largest is {largestDimension}); the config does not describe these weights.";
                    }
                    break;
                case SizeBound.LayerCount:
                    layers ??= LayerIndexBound(tensors);
                    if (size.Value > layers)
                    {
                        return $"at key '{size.Key}': {size.Value} layers, but the tensor names in {weightsSource} number at most {layers}; the config does not describe these weights.";
                    }
                    break;
            }
        }
        return null;
    }

    /// <summary>One more than the largest number that is a whole segment of a tensor name (<c>h.11.attn</c>: 12).</summary>
    private static long LayerIndexBound(IEnumerable<(string Name, IReadOnlyList<long> Shape)> tensors)
    {
        long bound = 0;
        foreach (var (name, _) in tensors)
        {
            foreach (var segment in name.Split('.'))
            {
                if (segment.Length is > 0 and < 10 && segment.All(char.IsAsciiDigit)) bound = Math.Max(bound, long.Parse(segment, System.Globalization.CultureInfo.InvariantCulture) + 1);
            }
        }
        return bound;
    }
}
