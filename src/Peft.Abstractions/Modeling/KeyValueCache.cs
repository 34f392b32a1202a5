using TorchSharp;
using static TorchSharp.torch;

namespace Peft.Modeling;

/// <summary>
/// Keys and values per layer, each (batch, heads, seq, head_dim): the generation cache, and
/// the form in which prefix tuning hands its prefixes to a model. Layers append as they run.
/// </summary>
public sealed class KeyValueCache : IDisposable
{
    private readonly (Tensor Key, Tensor Value)?[] _layers;

    /// <summary>An empty cache for <paramref name="layerCount"/> layers.</summary>
    public KeyValueCache(int layerCount) => _layers = new (Tensor, Tensor)?[layerCount];

    /// <summary>A cache holding the given per-layer keys and values (e.g. prefixes).</summary>
    public KeyValueCache(IReadOnlyList<(Tensor Key, Tensor Value)> layers)
    {
        _layers = new (Tensor, Tensor)?[layers.Count];
        for (int i = 0; i < layers.Count; i++) _layers[i] = (layers[i].Key.DetachFromDisposeScope(), layers[i].Value.DetachFromDisposeScope());
    }

    /// <summary>Number of layers.</summary>
    public int LayerCount => _layers.Length;

    /// <summary>Positions held (the sequence length of layer 0), 0 when empty.</summary>
    public long Length => _layers.Length > 0 && _layers[0] is { } first ? first.Key.shape[2] : 0;

    /// <summary>The keys and values held for <paramref name="layer"/>, if any.</summary>
    public (Tensor Key, Tensor Value)? this[int layer] => _layers[layer];

    /// <summary>
    /// Appends this step's keys and values for <paramref name="layer"/> along the sequence axis and
    /// returns everything held for it. The cache owns what it holds: the tensors it keeps are
    /// detached from every dispose scope and freed by <see cref="Dispose"/> or the next append.
    /// </summary>
    public (Tensor Key, Tensor Value) Append(int layer, Tensor key, Tensor value)
    {
        var held = _layers[layer];
        if (held is { } h)
        {
            key = torch.cat([h.Key, key], dim: 2);
            value = torch.cat([h.Value, value], dim: 2);
        }
        _layers[layer] = (key.DetachFromDisposeScope(), value.DetachFromDisposeScope());
        if (held is { } old)
        {
            old.Key.Dispose();
            old.Value.Dispose();
        }
        return (key, value);
    }

    /// <summary>Keeps only the batch rows at <paramref name="rows"/> (in that order), e.g. when finished rows leave a decoding batch.</summary>
    public void SelectRows(Tensor rows) => Replace(entry => (entry.Key.index_select(0, rows), entry.Value.index_select(0, rows)));

    /// <summary>Drops the first <paramref name="count"/> positions of every layer (columns no row attends any more).</summary>
    public void DropLeft(long count)
    {
        if (count > 0) Replace(entry => (entry.Key[.., .., (int)count..].contiguous(), entry.Value[.., .., (int)count..].contiguous()));
    }

    /// <summary>
    /// The rows of <paramref name="first"/> followed by those of <paramref name="second"/>, the shorter left-padded with
    /// zeros to the longer's length (the caller masks those positions): rows joining a decoding batch.
    /// Both inputs keep their tensors; dispose them when no longer needed.
    /// </summary>
    public static KeyValueCache Concat(KeyValueCache first, KeyValueCache second)
    {
        ArgumentNullException.ThrowIfNull(first);
        ArgumentNullException.ThrowIfNull(second);
        if (first.LayerCount != second.LayerCount) throw new ArgumentException($"Caches of {first.LayerCount} and {second.LayerCount} layers cannot be joined.", nameof(second));
        var length = Math.Max(first.Length, second.Length);
        var layers = new List<(Tensor Key, Tensor Value)>(first.LayerCount);
        using var scope = torch.NewDisposeScope();
        for (int i = 0; i < first.LayerCount; i++)
        {
            var (a, b) = (first[i] ?? throw new ArgumentException($"Layer {i} holds nothing.", nameof(first)), second[i] ?? throw new ArgumentException($"Layer {i} holds nothing.", nameof(second)));
            layers.Add((torch.cat([PadLeft(a.Key, length), PadLeft(b.Key, length)], 0), torch.cat([PadLeft(a.Value, length), PadLeft(b.Value, length)], 0)));
        }
        return new KeyValueCache(layers);
    }

    private static Tensor PadLeft(Tensor states, long length) =>
        states.shape[2] == length ? states : torch.nn.functional.pad(states, [0, 0, length - states.shape[2], 0]);

    private void Replace(Func<(Tensor Key, Tensor Value), (Tensor Key, Tensor Value)> change)
    {
        for (int i = 0; i < _layers.Length; i++)
        {
            if (_layers[i] is not { } held) continue;
            using var scope = torch.NewDisposeScope();
            var (key, value) = change(held);
            _layers[i] = (key.DetachFromDisposeScope(), value.DetachFromDisposeScope());
            held.Key.Dispose();
            held.Value.Dispose();
        }
    }

    /// <inheritdoc />
    public void Dispose()
    {
        foreach (var entry in _layers)
        {
            entry?.Key.Dispose();
            entry?.Value.Dispose();
        }
        Array.Clear(_layers);
    }
}
