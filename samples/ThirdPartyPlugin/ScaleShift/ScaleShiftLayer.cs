using Peft;
using Peft.Tuners;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace ThirdPartyPlugin.ScaleShift;

/// <summary>
/// One adapter's learned vectors, registered as <c>scale</c> and <c>shift</c> (one entry per output channel).
/// </summary>
public sealed class ScaleShiftVectors : nn.Module
{
    private readonly Parameter scale;
    private readonly Parameter shift;

    /// <summary>Vectors for <paramref name="features"/> output channels.</summary>
    /// <param name="features">Output channels of the wrapped layer.</param>
    /// <param name="identity">True: scale 1 and shift 0; false: random near that.</param>
    /// <param name="dtype">The base weight's dtype.</param>
    /// <param name="device">The base weight's device.</param>
    public ScaleShiftVectors(long features, bool identity, ScalarType dtype, Device device) : base(nameof(ScaleShiftVectors))
    {
        scale = new Parameter(identity ? torch.ones(features, dtype: dtype, device: device) : 1 + 0.1 * torch.randn(features, dtype: dtype, device: device));
        shift = new Parameter(identity ? torch.zeros(features, dtype: dtype, device: device) : 0.1 * torch.randn(features, dtype: dtype, device: device));
        RegisterComponents();
    }

    /// <summary>Per-channel factor, (out).</summary>
    public Parameter Scale => scale;

    /// <summary>Per-channel offset, (out).</summary>
    public Parameter Shift => shift;
}

/// <summary>
/// Wraps a Linear (or GPT-2 Conv1D) layer: <c>y = base(x) · scale + shift</c>, per output channel.
/// Parameter names: <c>base_layer.weight</c>, <c>scale_shift.&lt;adapter&gt;.scale</c>, <c>scale_shift.&lt;adapter&gt;.shift</c>.
/// </summary>
/// <remarks>
/// Merging folds the adapter into the base layer: <c>W ← scale·W</c> (row-wise), <c>b ← scale·b + shift</c>.
/// The method is not additive, so it overrides <see cref="AdapterLayer"/>'s merge hooks
/// (<see cref="MergeAdapter"/>, <see cref="UnmergeAdapter"/>) rather than supplying a delta; the
/// template keeps the bookkeeping (which adapters are merged, no gradients, dispose scopes).
/// </remarks>
public sealed class ScaleShiftLayer : AdapterLayer
{
    private readonly AdapterModuleDict<ScaleShiftVectors> scale_shift = new();

    /// <summary>Wraps <paramref name="baseLayer"/> (Linear or Conv1D), registered as <c>base_layer</c>.</summary>
    public ScaleShiftLayer(nn.Module<Tensor, Tensor> baseLayer) : base(nameof(ScaleShiftLayer), baseLayer)
    {
        RegisterComponents();
    }

    /// <inheritdoc />
    public override IReadOnlyCollection<string> AdapterNames => scale_shift.Names;

    /// <summary>Adds adapter <paramref name="name"/>.</summary>
    /// <param name="name">The adapter's name.</param>
    /// <param name="identity">True: start as the identity (scale 1, shift 0).</param>
    public void AddAdapter(string name, bool identity) =>
        scale_shift.Add(name, new ScaleShiftVectors(Shape.OutFeatures, identity, BaseWeight.dtype, BaseWeight.device));

    /// <summary>The vectors of adapter <paramref name="name"/>.</summary>
    public ScaleShiftVectors this[string name] => scale_shift[name];

    /// <inheritdoc />
    public override Tensor forward(Tensor input)
    {
        var result = base_layer.call(input);
        if (BaseOnly) return result;
        using var scope = torch.NewDisposeScope();
        foreach (var name in ActiveAdapters)
        {
            if (MergedAdapters.Contains(name)) continue;
            var vectors = scale_shift[name];
            result = result * vectors.Scale + vectors.Shift;
        }
        return result.MoveToOuterDisposeScope();
    }

    /// <inheritdoc />
    protected override void MergeAdapter(string adapterName)
    {
        var vectors = scale_shift[adapterName];
        BaseWeight.mul_(ChannelFactor(vectors.Scale));
        BaseBias().mul_(vectors.Scale).add_(vectors.Shift);
    }

    /// <inheritdoc />
    protected override void UnmergeAdapter(string adapterName)
    {
        var vectors = scale_shift[adapterName];
        BaseWeight.div_(ChannelFactor(vectors.Scale));
        BaseBias().sub_(vectors.Shift).div_(vectors.Scale);
    }

    /// <summary>The per-output-channel factor shaped to the weight: Linear stores (out, in), Conv1D (in, out).</summary>
    private Tensor ChannelFactor(Tensor scale) => Shape.Kind == SlotKind.Conv1D ? scale : scale.unsqueeze(1);

    /// <inheritdoc />
    public override void DeleteAdapter(string adapterName)
    {
        if (!scale_shift.Remove(adapterName)) return;
        ActiveAdapters = ActiveAdapters.Where(a => a != adapterName).ToArray();
    }

    /// <summary>The base layer's bias; a Linear without one gets a zero bias, frozen, to take the shift.</summary>
    private Tensor BaseBias()
    {
        switch (base_layer)
        {
            case Linear linear:
                if (linear.bias is null)
                {
                    var weight = linear.weight!;
                    linear.bias = new Parameter(torch.zeros(Shape.OutFeatures, dtype: weight.dtype, device: weight.device), requires_grad: false);
                }
                return linear.bias!;
            case Peft.Layers.Conv1D conv:
                return conv.bias;
            default:
                throw new NotSupportedException($"SCALE_SHIFT cannot merge into a {base_layer.GetType().Name}.");
        }
    }
}
