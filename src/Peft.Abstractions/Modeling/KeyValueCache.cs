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
