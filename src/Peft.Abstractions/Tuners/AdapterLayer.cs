using TorchSharp;
using static TorchSharp.torch;

namespace Peft.Tuners;

/// <summary>
/// Base of layers that wrap a frozen base layer and hold named adapters in <c>ModuleDict</c>s or
/// <c>ParameterDict</c>s keyed by adapter name, so parameter names come out as the reference's
/// (<c>c_attn.base_layer.weight</c>, <c>c_attn.lora_A.default.weight</c>).
/// </summary>
/// <remarks>
/// A derived layer registers its adapter containers, implements <see cref="Delta"/> for merging
/// and <see cref="nn.Module{T, TResult}.forward"/>; this class keeps the bookkeeping.
/// </remarks>
public abstract class AdapterLayer : nn.Module<Tensor, Tensor>, IAdapterLayer
{
    private readonly List<string> _merged = [];
    private string[] _active = [];

    /// <summary>Wraps <paramref name="baseLayer"/>, registered as <c>base_layer</c>.</summary>
    protected AdapterLayer(string name, nn.Module<Tensor, Tensor> baseLayer) : base(name)
    {
        base_layer = baseLayer;
        Shape = LayerShape.Of(baseLayer);
    }

    /// <summary>The wrapped layer (registered as <c>base_layer</c>, the reference's name).</summary>
#pragma warning disable IDE1006 // Hugging Face's module name
    protected readonly nn.Module<Tensor, Tensor> base_layer;
#pragma warning restore IDE1006

    /// <summary>The base layer's kind and sizes.</summary>
    public LayerShape Shape { get; }

    /// <inheritdoc />
    public nn.Module<Tensor, Tensor> BaseLayer => base_layer;

    /// <inheritdoc />
    public abstract IReadOnlyCollection<string> AdapterNames { get; }

    /// <inheritdoc />
    public IReadOnlyList<string> ActiveAdapters
    {
        get => _active;
        set => _active = value.Where(AdapterNames.Contains).ToArray();
    }

    /// <summary>
    /// When set, forward() runs the base layer alone. A merged layer is unmerged first (as the
    /// reference's forward does when adapters are disabled), so "disabled" really is the base layer.
    /// </summary>
    public bool AdaptersDisabled
    {
        get => _disabled;
        set
        {
            if (value && _merged.Count > 0) Unmerge();
            _disabled = value;
        }
    }

    private bool _disabled;

    /// <inheritdoc />
    public IReadOnlyList<string> MergedAdapters => _merged;

    /// <summary>True when forward() should run the base layer alone.</summary>
    protected bool BaseOnly => AdaptersDisabled || _active.Length == 0 || _merged.Count > 0 && AllActiveMerged();

    // A loop, not LINQ: this runs on every forward of every adapted layer, and All() allocates a delegate each time.
    private bool AllActiveMerged()
    {
        for (int i = 0; i < _active.Length; i++)
        {
            if (!_merged.Contains(_active[i])) return false;
        }
        return true;
    }

    /// <summary>
    /// The reference's rule for <c>fan_in_fan_out</c>: the layer kind decides (true exactly for GPT-2's
    /// Conv1D, whose weight is stored (in, out)); a config that says otherwise is corrected with a warning.
    /// </summary>
    /// <param name="kind">The base layer's kind.</param>
    /// <param name="configured">The config's value.</param>
    protected static bool FanInFanOutFor(SlotKind kind, bool configured)
    {
        var actual = kind == SlotKind.Conv1D;
        if (configured != actual)
        {
            PeftLog.Warn(actual
                ? "fan_in_fan_out is set to False but the target module is `Conv1D`. Setting fan_in_fan_out to True."
                : "fan_in_fan_out is set to True but the target module is `torch.nn.Linear`. Setting fan_in_fan_out to False.");
        }
        return actual;
    }

    /// <summary>
    /// The base layer's weight, in the base layer's own layout. For a quantized base (<see cref="IQuantizedLinear"/>) a
    /// dequantized copy: read it, and write through <see cref="AddToBaseWeight"/> or <see cref="SetBaseWeight"/>.
    /// </summary>
    protected Tensor BaseWeight => Shape.Kind switch
    {
        SlotKind.Linear when base_layer is IQuantizedLinear quantized => quantized.Dequantize(),
        SlotKind.Linear => ((TorchSharp.Modules.Linear)base_layer).weight!,
        SlotKind.Conv1D => ((Layers.Conv1D)base_layer).weight,
        SlotKind.Conv2d => ((TorchSharp.Modules.Conv2d)base_layer).weight!,
        SlotKind.Embedding => ((TorchSharp.Modules.Embedding)base_layer).weight!,
        _ => throw new NotSupportedException($"{GetType().Name} cannot merge into {base_layer.GetType().Name}."),
    };

    /// <summary>
    /// The dtype new adapter weights are created in: float32 over a float16/bfloat16 base layer, the base weight's
    /// own dtype otherwise (the reference's <c>autocast_adapter_dtype=True</c>, its default). Layers cast their input
    /// to this dtype on the way into the adapter and their output back to the base layer's dtype on the way out,
    /// so a half-precision base trains adapters in full precision.
    /// </summary>
    protected ScalarType AdapterDType => BaseDType is ScalarType.Float16 or ScalarType.BFloat16 ? ScalarType.Float32 : BaseDType;

    /// <summary>The base weight's dtype; float32 for a quantized base (the reference's adapters stay float32 there, and merges add in float32).</summary>
    protected ScalarType BaseDType => base_layer is IQuantizedLinear ? ScalarType.Float32 : BaseWeight.dtype;

    /// <summary>The base weight's device.</summary>
    protected Device BaseDevice => base_layer is IQuantizedLinear quantized ? quantized.Device : BaseWeight.device;

    /// <summary>
    /// Whether this layer's merge writes only through <see cref="AddToBaseWeight"/> and <see cref="SetBaseWeight"/>,
    /// so that it may merge into a quantized base. False unless a layer says so; merging into a quantized base is refused then.
    /// </summary>
    protected virtual bool MergesIntoQuantizedBase => false;

    /// <summary>
    /// Adds <paramref name="delta"/> (base layout) to the base weight: in place, cast to its dtype; for a quantized base as
    /// the reference merges into bitsandbytes layers: dequantize, add in float32, quantize again (a rounding it warns about).
    /// </summary>
    protected void AddToBaseWeight(Tensor delta)
    {
        if (base_layer is IQuantizedLinear quantized)
        {
            using var scope = torch.NewDisposeScope();
            SetBaseWeight(quantized.Dequantize().to(ScalarType.Float32) + delta.to(ScalarType.Float32));
            return;
        }
        BaseWeight.add_(delta.to(BaseWeight.dtype));
    }

    /// <summary>Replaces the base weight by <paramref name="value"/> (base layout); a quantized base quantizes it, reporting the rounding.</summary>
    protected void SetBaseWeight(Tensor value)
    {
        if (base_layer is IQuantizedLinear quantized)
        {
            var error = quantized.Requantize(value);
            if (error > 0) PeftLog.Warn($"Merging into a {quantized.Format} layer requantizes its weight; generations may differ from the unmerged model by rounding (largest weight change from rounding here: {error:G3}).");
            return;
        }
        BaseWeight.copy_(value);
    }

    /// <summary>
    /// The adapter's weight delta, in the base weight's layout and dtype, for methods that merge by
    /// addition (the default <see cref="MergeAdapter"/>). Methods that merge otherwise override
    /// <see cref="MergeAdapter"/> and <see cref="UnmergeAdapter"/> instead.
    /// </summary>
    protected virtual Tensor Delta(string adapterName) =>
        throw new NotSupportedException($"{GetType().Name} overrides neither Delta nor MergeAdapter/UnmergeAdapter.");

    /// <summary>
    /// Folds one adapter into the base layer (no gradients, inside a dispose scope). The default adds <see cref="Delta"/>,
    /// cast to the base weight's dtype (a float32 adapter over a bfloat16 base merges in bfloat16, as the reference's).
    /// </summary>
    protected virtual void MergeAdapter(string adapterName) => AddToBaseWeight(Delta(adapterName));

    /// <summary>Takes one merged adapter back out of the base layer. The default subtracts <see cref="Delta"/>, cast as in <see cref="MergeAdapter"/>.</summary>
    protected virtual void UnmergeAdapter(string adapterName) => AddToBaseWeight(-Delta(adapterName));

    /// <inheritdoc />
    public virtual string? MergeBlocker(string adapterName) => null;

    /// <inheritdoc />
    /// <exception cref="InvalidOperationException">An adapter cannot be merged here (<see cref="MergeBlocker"/>); nothing was changed.</exception>
    public virtual void Merge(IEnumerable<string> adapterNames) => Merge(adapterNames, safeMerge: false);

    /// <inheritdoc />
    /// <exception cref="InvalidOperationException">An adapter cannot be merged here (<see cref="MergeBlocker"/>); nothing was changed.</exception>
    /// <exception cref="NonFiniteMergeException">With <paramref name="safeMerge"/>: a merged weight was not finite; this layer was left as it was.</exception>
    public virtual void Merge(IEnumerable<string> adapterNames, bool safeMerge)
    {
        var names = adapterNames.Where(n => !_merged.Contains(n) && AdapterNames.Contains(n)).ToList();
        if (names.Count > 0 && base_layer is IQuantizedLinear quantized && !MergesIntoQuantizedBase)
        {
            throw new InvalidOperationException($"Cannot merge adapter '{names[0]}': {GetType().Name} cannot merge into a quantized ({quantized.Format}) base layer.");
        }
        foreach (var name in names)
        {
            if (MergeBlocker(name) is { } reason) throw new InvalidOperationException($"Cannot merge adapter '{name}': {reason}");
        }
        using var noGrad = torch.no_grad();
        foreach (var name in names)
        {
            using var scope = torch.NewDisposeScope();
            if (safeMerge) SafeMergeAdapter(name);
            else MergeAdapter(name);
            _merged.Add(name);
        }
    }

    /// <summary>
    /// <see cref="MergeAdapter"/>, refused when it would leave a NaN or infinity in the base layer (the reference's
    /// <c>safe_merge</c>). Dense bases are written in place by every merge, so their floating-point parameters are
    /// copied first and put back bit for bit on refusal. A quantized base's storage is replaced, not written, by a
    /// merge (and only additive merges reach one), so there the merged weight is computed on a dequantized copy first.
    /// </summary>
    private void SafeMergeAdapter(string adapterName)
    {
        if (base_layer is IQuantizedLinear && !(BaseWeight.to(ScalarType.Float32) + Delta(adapterName).to(ScalarType.Float32)).isfinite().all().item<bool>())
        {
            throw Broken(adapterName);
        }
        var dense = base_layer.parameters().Where(p => p.is_floating_point()).ToList();
        var copies = dense.Select(p => p.clone()).ToList();
        MergeAdapter(adapterName);
        var finite = dense.All(p => p.isfinite().all().item<bool>())
            && (base_layer is not IQuantizedLinear quantized || quantized.Dequantize().isfinite().all().item<bool>());
        if (finite) return;
        for (int i = 0; i < dense.Count; i++) dense[i].copy_(copies[i]);
        throw Broken(adapterName);
    }

    private static NonFiniteMergeException Broken(string adapterName) =>
        new(adapterName, $"NaNs detected in the merged weights. The adapter '{adapterName}' seems to be broken (safe merge: the layer was left unmerged).");

    /// <inheritdoc />
    public virtual void Unmerge()
    {
        using var noGrad = torch.no_grad();
        for (int i = _merged.Count - 1; i >= 0; i--)
        {
            using var scope = torch.NewDisposeScope();
            UnmergeAdapter(_merged[i]);
        }
        _merged.Clear();
    }

    /// <inheritdoc />
    public abstract void DeleteAdapter(string adapterName);
}
