using TorchSharp;
using static TorchSharp.torch;

namespace Peft.Tuners;

/// <summary>
/// Which adapter each row of a batch uses, for the duration of one call (the reference's
/// <c>adapter_names</c> argument of forward and generate). Layers that implement
/// <see cref="IRowRoutedLayer"/> read <see cref="Current"/> and run each adapter's rows through
/// that adapter once; the model's own active-adapter state is neither read nor changed, so
/// concurrent calls with different routings on one model do not see each other.
/// </summary>
/// <remarks>
/// The routing flows with the call (an <see cref="AsyncLocal{T}"/>), not with the model: another
/// thread calling the same model at the same moment sees its own routing or none. The row index
/// tensors are made once per device and freed when the scope from <see cref="Enter"/> ends.
/// </remarks>
public sealed class AdapterRouting
{
    /// <summary>The name that routes a row to the base model alone (the reference's <c>"__base__"</c>).</summary>
    public const string BaseModelName = "__base__";

    private static readonly AsyncLocal<AdapterRouting?> s_current = new();

    private readonly Dictionary<string, Tensor> _indexByKey = [];
    private readonly object _owner;

    /// <summary>Groups <paramref name="rowAdapters"/> (one adapter name per row) by name, in order of first appearance.</summary>
    /// <param name="owner">The model the routing is for; a routing never applies to another model's layers by accident.</param>
    /// <param name="rowAdapters">The adapter of each row, <see cref="BaseModelName"/> for the base model.</param>
    public AdapterRouting(object owner, IReadOnlyList<string> rowAdapters)
    {
        ArgumentNullException.ThrowIfNull(owner);
        if (rowAdapters.Count == 0) throw new ArgumentException("A routing needs at least one row.", nameof(rowAdapters));
        _owner = owner;
        RowAdapters = rowAdapters;
        Groups = [.. rowAdapters
            .Select((name, row) => (name, row))
            .GroupBy(p => p.name, StringComparer.Ordinal)
            .Select(g => new RowGroup(g.Key, [.. g.Select(p => (long)p.row)]))];
    }

    /// <summary>The routing of the call in progress on this flow, or null.</summary>
    public static AdapterRouting? Current => s_current.Value;

    /// <summary>The adapter of each row.</summary>
    public IReadOnlyList<string> RowAdapters { get; }

    /// <summary>Rows in the batch.</summary>
    public int Rows => RowAdapters.Count;

    /// <summary>The rows of each adapter (<see cref="BaseModelName"/> included), one group per distinct name.</summary>
    public IReadOnlyList<RowGroup> Groups { get; }

    /// <summary>True when this routing was made for <paramref name="model"/>.</summary>
    public bool IsFor(object model) => ReferenceEquals(_owner, model);

    /// <summary>Makes <paramref name="routing"/> current until the returned scope is disposed (which also frees its index tensors).</summary>
    public static IDisposable Enter(AdapterRouting routing)
    {
        var previous = s_current.Value;
        s_current.Value = routing;
        return new Scope(routing, previous);
    }

    /// <summary>
    /// The row indices of <paramref name="group"/> as an int64 tensor on <paramref name="device"/>, made once
    /// and kept outside any dispose scope (layers ask for it inside theirs).
    /// </summary>
    public Tensor IndexOf(RowGroup group, Device device)
    {
        var key = $"{group.Adapter}\n{device}";
        lock (_indexByKey)
        {
            if (!_indexByKey.TryGetValue(key, out var index))
            {
                index = torch.tensor(group.Rows.ToArray(), dtype: ScalarType.Int64, device: device).DetachFromDisposeScope();
                _indexByKey[key] = index;
            }
            return index;
        }
    }

    /// <summary>Throws unless <paramref name="input"/> has one row per routed row (batch first).</summary>
    /// <param name="input">A layer's input.</param>
    /// <param name="layer">The layer, for the message.</param>
    public void CheckRows(Tensor input, string layer)
    {
        if (input.dim() == 0 || input.shape[0] != Rows)
        {
            throw new InvalidOperationException(
                $"{layer} got an input of shape [{string.Join(", ", input.shape)}] but the call routes {Rows} rows: per-row adapters need the batch as the first dimension in every adapted layer.");
        }
    }

    private void Free()
    {
        lock (_indexByKey)
        {
            foreach (var index in _indexByKey.Values) index.Dispose();
            _indexByKey.Clear();
        }
    }

    /// <summary>The rows one adapter owns.</summary>
    /// <param name="Adapter">The adapter's name, or <see cref="BaseModelName"/>.</param>
    /// <param name="Rows">Its row indices, ascending.</param>
    public sealed record RowGroup(string Adapter, IReadOnlyList<long> Rows);

    private sealed class Scope(AdapterRouting routing, AdapterRouting? previous) : IDisposable
    {
        private bool _disposed;

        public void Dispose()
        {
            if (_disposed) return;
            _disposed = true;
            s_current.Value = previous;
            routing.Free();
        }
    }
}

/// <summary>
/// An adapter layer that honours <see cref="AdapterRouting.Current"/>: each row gets the adapter its
/// routing names (or none), whatever the layer's active adapters are. A model refuses per-row adapters
/// while any of its adapter layers lacks this interface, rather than give some rows the wrong adapter.
/// </summary>
public interface IRowRoutedLayer : IAdapterLayer
{
    /// <summary>Why this layer cannot route <paramref name="adapterName"/> per row (null when it can).</summary>
    string? RoutingBlocker(string adapterName) => MergedAdapters.Count > 0
        ? $"adapter(s) {string.Join(", ", MergedAdapters)} are merged into its base weight, so every row would get them; unmerge first"
        : null;
}

/// <summary>Helpers the routed layers share.</summary>
public static class RowRouting
{
    /// <summary>
    /// Runs <paramref name="perGroup"/> on each group's rows of <paramref name="input"/> and puts the results back
    /// in row order; a group that covers every row runs on the whole input (no gather).
    /// </summary>
    /// <param name="routing">The call's routing.</param>
    /// <param name="input">Batch-first input.</param>
    /// <param name="perGroup">The computation for one adapter's rows.</param>
    public static Tensor MapGroups(AdapterRouting routing, Tensor input, Func<AdapterRouting.RowGroup, Tensor, Tensor> perGroup)
    {
        if (routing.Groups.Count == 1) return perGroup(routing.Groups[0], input);
        var outputs = new List<Tensor>(routing.Groups.Count);
        var order = new List<long>(routing.Rows);
        foreach (var group in routing.Groups)
        {
            outputs.Add(perGroup(group, input.index_select(0, routing.IndexOf(group, input.device))));
            order.AddRange(group.Rows);
        }
        var inverse = new long[order.Count];
        for (int i = 0; i < order.Count; i++) inverse[order[i]] = i;
        using var inverseIndex = torch.tensor(inverse, device: input.device);
        return torch.cat(outputs, 0).index_select(0, inverseIndex);
    }
}
