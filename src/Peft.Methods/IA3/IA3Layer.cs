// IA3 for Linear and GPT-2 Conv1D layers, following peft/tuners/ia3/layer.py (class Linear).
using Peft.Tuners;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Peft.Methods.IA3;

/// <summary>
/// Scales a Linear or Conv1D layer by a learned vector: its input for a feed-forward module
/// (vector (1, in_features)), otherwise its output (vector (out_features, 1)). The parameter name
/// matches the reference: <c>ia3_l.&lt;adapter&gt;</c>.
/// </summary>
public sealed class IA3Layer : AdapterLayer, IRowRoutedLayer
{
    /// <summary>The reference's guard against dividing by zero on unmerge.</summary>
    private const double UnmergeEpsilon = 1e-8;

    private readonly ParameterDict ia3_l = new();
    private readonly List<string> _names = [];
    private readonly bool _fanInFanOut;

    /// <summary>Wraps <paramref name="baseLayer"/> (Linear or Conv1D).</summary>
    /// <param name="baseLayer">The layer to scale.</param>
    /// <param name="isFeedforward">Scale the input (true) or the output (false).</param>
    /// <param name="fanInFanOut">The config's fan_in_fan_out; as in the reference the layer kind decides (true exactly for Conv1D), with a warning when they disagree.</param>
    public IA3Layer(nn.Module<Tensor, Tensor> baseLayer, bool isFeedforward, bool fanInFanOut) : base("IA3Layer", baseLayer)
    {
        IsFeedforward = isFeedforward;
        _fanInFanOut = FanInFanOutFor(Shape.Kind, fanInFanOut);
        RegisterComponents();
    }

    /// <summary>True when the vector scales the layer's input.</summary>
    public bool IsFeedforward { get; }

    /// <inheritdoc />
    public override IReadOnlyCollection<string> AdapterNames => _names;

    /// <summary>Adds adapter <paramref name="name"/>: ones when <paramref name="initOnes"/>, else standard normal.</summary>
    public void AddAdapter(string name, bool initOnes)
    {
        var weight = BaseWeight;
        long[] shape = IsFeedforward ? [1, Shape.InFeatures] : [Shape.OutFeatures, 1];
        var vector = initOnes
            ? torch.ones(shape, dtype: AdapterDType, device: weight.device)
            : torch.randn(shape, dtype: AdapterDType, device: weight.device);
        ia3_l.Add((name, new Parameter(vector)));
        _names.Add(name);
    }

    /// <inheritdoc />
    public override Tensor forward(Tensor input)
    {
        if (AdapterRouting.Current is { } routing) return RoutedForward(input, routing);
        if (BaseOnly) return base_layer.call(input);
        using var scope = torch.NewDisposeScope();
        Tensor? scaling = null;
        foreach (var name in ActiveAdapters)
        {
            if (MergedAdapters.Contains(name)) continue;
            var vector = ia3_l[name].flatten();
            scaling = scaling is null ? vector : scaling * vector;
        }
        if (scaling is null) return base_layer.call(input).MoveToOuterDisposeScope();
        var result = IsFeedforward
            ? base_layer.call(input * scaling.to(input.dtype))
            : base_layer.call(input) * scaling;
        // A float32 vector over a half-precision layer: the output keeps the base layer's dtype.
        return result.to(input.dtype).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Per-row adapters: IA3 only scales, so one (batch, features) table of per-row vectors (ones for rows
    /// without this layer's adapter) scales the whole batch in a single base-layer call.
    /// </summary>
    private Tensor RoutedForward(Tensor input, AdapterRouting routing)
    {
        routing.CheckRows(input, nameof(IA3Layer));
        if (MergedAdapters.Count > 0) throw new InvalidOperationException(((IRowRoutedLayer)this).RoutingBlocker(MergedAdapters[0]));
        var groups = routing.Groups.Where(g => _names.Contains(g.Adapter)).ToList();
        if (groups.Count == 0) return base_layer.call(input);
        using var scope = torch.NewDisposeScope();
        var features = IsFeedforward ? Shape.InFeatures : Shape.OutFeatures;
        var scales = torch.ones(routing.Rows, features, dtype: AdapterDType, device: input.device);
        foreach (var group in groups)
        {
            var vector = ia3_l[group.Adapter].flatten();
            scales.index_copy_(0, routing.IndexOf(group, input.device), vector.unsqueeze(0).expand(group.Rows.Count, features));
        }
        // (batch, 1, ..., features): broadcast over every dimension between the batch and the features.
        scales = scales.reshape([routing.Rows, .. Enumerable.Repeat(1L, (int)input.dim() - 2), features]);
        var result = IsFeedforward
            ? base_layer.call(input * scales.to(input.dtype))
            : base_layer.call(input) * scales;
        return result.to(input.dtype).MoveToOuterDisposeScope();
    }

    /// <summary>The vector in the base weight's layout, ready to broadcast against it.</summary>
    private Tensor WeightScale(string adapterName)
    {
        var vector = ia3_l[adapterName].detach();
        return (_fanInFanOut ? vector.T : vector).to(BaseWeight.dtype);
    }

    private Tensor? Bias => base_layer switch
    {
        Linear linear => linear.bias,
        Layers.Conv1D conv => conv.bias,
        _ => null,
    };

    /// <summary>IA3 is multiplicative: merging scales the base weight (and, for output scaling, the bias).</summary>
    protected override void MergeAdapter(string adapterName)
    {
        BaseWeight.mul_(WeightScale(adapterName));
        if (!IsFeedforward && Bias is { } bias) bias.mul_(ia3_l[adapterName].detach().reshape(bias.shape).to(bias.dtype));
    }

    /// <summary>Divides the scaling back out (the reference's small epsilon keeps a zero entry finite).</summary>
    protected override void UnmergeAdapter(string adapterName)
    {
        BaseWeight.div_(WeightScale(adapterName) + UnmergeEpsilon);
        if (!IsFeedforward && Bias is { } bias) bias.div_(ia3_l[adapterName].detach().reshape(bias.shape).to(bias.dtype) + UnmergeEpsilon);
    }

    /// <inheritdoc />
    public override void DeleteAdapter(string adapterName)
    {
        if (!_names.Remove(adapterName)) return;
        ia3_l.Remove(adapterName);
        ActiveAdapters = ActiveAdapters.Where(a => a != adapterName).ToArray();
    }
}
