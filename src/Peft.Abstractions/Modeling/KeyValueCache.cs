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
        for (int i = 0; i < layers.Count; i++) _layers[i] = layers[i];
    }

    /// <summary>Number of layers.</summary>
    public int LayerCount => _layers.Length;

    /// <summary>Positions held (the sequence length of layer 0), 0 when empty.</summary>
    public long Length => _layers.Length > 0 && _layers[0] is { } first ? first.Key.shape[2] : 0;

    /// <summary>The keys and values held for <paramref name="layer"/>, if any.</summary>
    public (Tensor Key, Tensor Value)? this[int layer] => _layers[layer];

    /// <summary>
    /// Appends this step's keys and values for <paramref name="layer"/> along the sequence axis and
    /// returns everything held for it. The stored tensors are kept out of the caller's dispose scope.
    /// </summary>
    public (Tensor Key, Tensor Value) Append(int layer, Tensor key, Tensor value)
    {
        if (_layers[layer] is { } held)
        {
            key = torch.cat([held.Key, key], dim: 2);
            value = torch.cat([held.Value, value], dim: 2);
        }
        _layers[layer] = (key, value);
        return (key, value);
    }

    /// <summary>Moves every held tensor out of the current dispose scope so the cache outlives it.</summary>
    public KeyValueCache DetachFromScope()
    {
        foreach (var entry in _layers)
        {
            if (entry is { } kv)
            {
                kv.Key.MoveToOuterDisposeScope();
                kv.Value.MoveToOuterDisposeScope();
            }
        }
        return this;
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
