using TorchSharp;

namespace Peft.Serving;

/// <summary>
/// Which adapters of a <see cref="PeftModel"/> are loaded, for a server with more adapters than it keeps in
/// memory: adapters are registered by directory, loaded on first use, pinned while a request uses them, and
/// the least recently used unpinned one is unloaded when <see cref="MaxResident"/> would be exceeded
/// (LoRAX's and S-LoRA's adapter cache). Thread-safe.
/// </summary>
/// <remarks>
/// Loading reads and attaches the adapter inside <see cref="PeftModel.ChangeAdapters"/>: routed forward steps
/// of other requests wait for that attach (milliseconds for a LoRA of a few MB), never for each other, and a
/// request between two decoding steps goes on afterwards. The model's active adapter (the one it was created
/// with) stays resident for good: <see cref="PeftModel.DeleteAdapter"/> cannot remove it.
/// </remarks>
public sealed class AdapterResidency
{
    private readonly PeftModel _model;
    private readonly object _gate = new();
    private readonly Dictionary<string, string> _sources = new(StringComparer.Ordinal);
    private readonly Dictionary<string, Entry> _resident = new(StringComparer.Ordinal);
    private readonly Dictionary<string, Task> _loading = new(StringComparer.Ordinal);
    private long _clock;

    /// <summary>
    /// Takes over <paramref name="model"/>'s adapters as resident for good (their directories are unknown, so they could
    /// not come back); <paramref name="maxResident"/> counts them too.
    /// </summary>
    /// <param name="model">The served model.</param>
    /// <param name="maxResident">How many adapters may be loaded at once (at least 1).</param>
    public AdapterResidency(PeftModel model, int maxResident)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(maxResident, 1);
        _model = model;
        MaxResident = maxResident;
        foreach (var name in model.Adapters.Keys)
        {
            _resident[name] = new Entry(MeasureBytes(name), permanent: true) { LastUsed = ++_clock };
        }
    }

    /// <summary>The most adapters loaded at once.</summary>
    public int MaxResident { get; }

    /// <summary>The served model.</summary>
    public PeftModel Model => _model;

    /// <summary>Raised after an adapter was loaded (true) or unloaded (false); for logs and metrics.</summary>
    public event Action<string, bool>? Changed;

    /// <summary>Every adapter a request may name: registered or resident.</summary>
    public IReadOnlyList<string> Known
    {
        get
        {
            lock (_gate) return [.. _resident.Keys.Union(_sources.Keys).Order(StringComparer.Ordinal)];
        }
    }

    /// <summary>Makes the adapter saved in <paramref name="directory"/> available as <paramref name="name"/>, loaded on first use.</summary>
    /// <exception cref="ArgumentException">The name is taken or reserved, or the directory has no adapter_config.json.</exception>
    public void Register(string name, string directory)
    {
        if (string.IsNullOrWhiteSpace(name) || name == PeftModel.BaseModelName) throw new ArgumentException($"'{name}' cannot name an adapter.", nameof(name));
        if (!File.Exists(Path.Combine(directory, "adapter_config.json"))) throw new ArgumentException($"{directory}: no adapter_config.json.", nameof(directory));
        lock (_gate)
        {
            if (_sources.ContainsKey(name) || _resident.ContainsKey(name)) throw new ArgumentException($"An adapter named '{name}' is already registered.", nameof(name));
            _sources[name] = Path.GetFullPath(directory);
        }
    }

    /// <summary>True when <paramref name="name"/> is the base model or a known adapter.</summary>
    public bool IsKnown(string name)
    {
        if (name == PeftModel.BaseModelName) return true;
        lock (_gate) return _resident.ContainsKey(name) || _sources.ContainsKey(name);
    }

    /// <summary>
    /// Loads what is missing of <paramref name="names"/> and pins them all until the lease is disposed, so no
    /// eviction can remove an adapter a request is decoding with. <see cref="PeftModel.BaseModelName"/> needs nothing.
    /// </summary>
    /// <exception cref="KeyNotFoundException">A name is neither registered nor resident.</exception>
    /// <exception cref="AdapterCapacityException">Every resident adapter is pinned, so none can make room.</exception>
    public async Task<AdapterLease> AcquireAsync(IEnumerable<string> names, CancellationToken cancellationToken = default)
    {
        var wanted = names.Where(n => n != PeftModel.BaseModelName).Distinct(StringComparer.Ordinal).ToList();
        foreach (var name in wanted)
        {
            if (!IsKnown(name)) throw new KeyNotFoundException($"No adapter named '{name}'; known: {string.Join(", ", Known.DefaultIfEmpty("none"))}.");
        }
        var pinned = new List<string>();
        try
        {
            foreach (var name in wanted)
            {
                await PinAsync(name, cancellationToken).ConfigureAwait(false);
                pinned.Add(name);
            }
        }
        catch
        {
            Release(pinned);
            throw;
        }
        return new AdapterLease(this, pinned);
    }

    /// <summary>Unloads <paramref name="name"/> now (it stays registered and loads again on next use).</summary>
    /// <exception cref="InvalidOperationException">It is in use, or it is the model's permanent adapter.</exception>
    public void Unload(string name)
    {
        lock (_gate)
        {
            if (!_resident.TryGetValue(name, out var entry)) return;
            if (entry.Permanent) throw new InvalidOperationException($"Adapter '{name}' came with the model and stays loaded.");
            if (entry.Pins > 0) throw new InvalidOperationException($"Adapter '{name}' is in use by {entry.Pins} request(s).");
            _resident.Remove(name);
        }
        _model.ChangeAdapters(() => _model.DeleteAdapter(name));
        Changed?.Invoke(name, false);
    }

    /// <summary>The loaded adapters, most recently used first, with their memory.</summary>
    public IReadOnlyList<ResidentAdapter> Resident
    {
        get
        {
            lock (_gate)
            {
                return [.. _resident.OrderByDescending(kv => kv.Value.LastUsed).Select(kv => new ResidentAdapter(kv.Key, kv.Value.Bytes, kv.Value.Pins, kv.Value.Permanent))];
            }
        }
    }

    /// <summary>Bytes of adapter weights held in memory (all resident adapters).</summary>
    public long ResidentBytes
    {
        get
        {
            lock (_gate) return _resident.Values.Sum(e => e.Bytes);
        }
    }

    internal void Release(IEnumerable<string> names)
    {
        lock (_gate)
        {
            foreach (var name in names)
            {
                if (_resident.TryGetValue(name, out var entry) && entry.Pins > 0) entry.Pins--;
            }
        }
    }

    private async Task PinAsync(string name, CancellationToken cancellationToken)
    {
        while (true)
        {
            Task loading;
            lock (_gate)
            {
                if (_resident.TryGetValue(name, out var entry))
                {
                    entry.Pins++;
                    entry.LastUsed = ++_clock;
                    return;
                }
                if (!_loading.TryGetValue(name, out loading!))
                {
                    loading = Task.Run(() => Load(name), CancellationToken.None);
                    _loading[name] = loading;
                }
            }
            // Several requests for one missing adapter share one load; each then pins it (and loops if it was evicted meanwhile).
            await loading.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    private void Load(string name)
    {
        List<string> victims = [];
        try
        {
            string directory;
            lock (_gate)
            {
                directory = _sources[name];
                victims = ChooseVictims();
            }
            _model.ChangeAdapters(() =>
            {
                foreach (var victim in victims) _model.DeleteAdapter(victim);
                _model.LoadAdapter(directory, name);
            });
            var bytes = MeasureBytes(name);
            lock (_gate) _resident[name] = new Entry(bytes, permanent: false) { LastUsed = ++_clock };
        }
        finally
        {
            lock (_gate) _loading.Remove(name);
            foreach (var victim in victims) Changed?.Invoke(victim, false);
        }
        Changed?.Invoke(name, true);
    }

    /// <summary>
    /// The least recently used unpinned adapters that must go so one more fits; taken out of the table at once
    /// (under the gate), so nobody pins an adapter that is about to be deleted.
    /// </summary>
    private List<string> ChooseVictims()
    {
        var excess = _resident.Count + _loading.Count - MaxResident;   // _loading already counts the adapter being loaded
        var candidates = _resident.Where(kv => kv.Value.Pins == 0 && !kv.Value.Permanent).OrderBy(kv => kv.Value.LastUsed).Take(Math.Max(0, excess)).ToList();
        if (candidates.Count < excess)
        {
            throw new AdapterCapacityException($"All {MaxResident} resident adapters are in use; try again when a request has finished.");
        }
        foreach (var (victim, _) in candidates) _resident.Remove(victim);
        return [.. candidates.Select(kv => kv.Key)];
    }

    private long MeasureBytes(string name)
    {
        using var scope = torch.NewDisposeScope();
        return _model.Adapters[name].GetStateDict().Values.Sum(t => t.numel() * t.ElementSize);
    }

    private sealed class Entry(long bytes, bool permanent)
    {
        public long Bytes { get; } = bytes;
        public bool Permanent { get; } = permanent;
        public int Pins { get; set; }
        public long LastUsed { get; set; }
    }
}

/// <summary>Adapters pinned for one request; dispose it when the request ends.</summary>
public sealed class AdapterLease : IDisposable
{
    private readonly AdapterResidency _owner;
    private IReadOnlyList<string>? _names;

    internal AdapterLease(AdapterResidency owner, IReadOnlyList<string> names) => (_owner, _names) = (owner, names);

    /// <inheritdoc />
    public void Dispose()
    {
        var names = Interlocked.Exchange(ref _names, null);
        if (names is not null) _owner.Release(names);
    }
}

/// <summary>One loaded adapter.</summary>
/// <param name="Name">Its name.</param>
/// <param name="Bytes">Its weights' size in memory.</param>
/// <param name="Pins">Requests using it now.</param>
/// <param name="Permanent">One the model had from the start, never unloaded.</param>
public sealed record ResidentAdapter(string Name, long Bytes, int Pins, bool Permanent);

/// <summary>No adapter can be unloaded to make room: every resident one is in use (a server answers 503).</summary>
/// <param name="message">What is full.</param>
public sealed class AdapterCapacityException(string message) : Exception(message);
