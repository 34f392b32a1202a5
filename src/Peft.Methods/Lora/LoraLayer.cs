// LoRA for Linear and GPT-2 Conv1D layers, following peft/tuners/lora/layer.py (class Linear).
using Peft.Tuners;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Peft.Methods.Lora;

/// <summary>
/// Adds <c>lora_B(lora_A(dropout(x))) · scaling</c> to a Linear or Conv1D layer's output.
/// Parameter names match the reference: <c>lora_A.&lt;adapter&gt;.weight</c>, <c>lora_B.&lt;adapter&gt;.weight</c>,
/// and with DoRA <c>lora_magnitude_vector.&lt;adapter&gt;.weight</c> (see <see cref="DoraMagnitude"/>).
/// </summary>
public sealed partial class LoraLayer : AdapterLayer, ILoraFactors
{
    private readonly AdapterModuleDict<nn.Module<Tensor, Tensor>> lora_dropout = new();
    private readonly AdapterModuleDict<Linear> lora_A = new();
    private readonly AdapterModuleDict<Linear> lora_B = new();
    private readonly AdapterModuleDict<DoraMagnitude> lora_magnitude_vector = new();
    private readonly Dictionary<string, double> _scaling = [];
    private readonly bool _fanInFanOut;

    /// <summary>Wraps <paramref name="baseLayer"/> (Linear or Conv1D).</summary>
    /// <param name="baseLayer">The layer to adapt.</param>
    /// <param name="fanInFanOut">
    /// The config's <c>fan_in_fan_out</c>. As in the reference the layer kind decides (true exactly for
    /// Conv1D, whose weight is stored (in, out)); a config that disagrees is corrected with a warning.
    /// </param>
    public LoraLayer(nn.Module<Tensor, Tensor> baseLayer, bool fanInFanOut) : base("LoraLayer", baseLayer)
    {
        _fanInFanOut = FanInFanOutFor(Shape.Kind, fanInFanOut);
        RegisterComponents();
    }

    /// <inheritdoc />
    public override IReadOnlyCollection<string> AdapterNames => _scaling.Keys;

    /// <summary>Adds adapter <paramref name="name"/> of rank <paramref name="rank"/>.</summary>
    /// <param name="name">The adapter's name.</param>
    /// <param name="rank">r.</param>
    /// <param name="scaling">alpha / r (or alpha / √r).</param>
    /// <param name="dropout">Dropout on the branch's input.</param>
    /// <param name="loraBias">Whether lora_B has a (trainable) bias.</param>
    /// <param name="init">How A and B start; PiSSA and OLoRA also replace the base weight by the residual.</param>
    /// <param name="useDora">Weight-decomposed: a magnitude vector rescales each output row of the adapted weight.</param>
    /// <param name="pissaIterations">The power iterations of <see cref="LoraInit.PissaLowRank"/>.</param>
    public void AddAdapter(string name, int rank, double scaling, double dropout, bool loraBias, LoraInit init, bool useDora = false, int pissaIterations = 0)
    {
        if (base_layer is IQuantizedLinear quantized && init is LoraInit.Pissa or LoraInit.PissaLowRank or LoraInit.Olora)
        {
            // As the reference: these rewrite the base weight, which a quantized base cannot hold exactly.
            throw new PeftConfigException($"init_lora_weights '{init}' rewrites the base weight and cannot start from a {quantized.Format} base: initialise it in float32, bfloat16 or float16, then quantize the residual model.");
        }
        var dtype = AdapterDType;
        var device = BaseDevice;
        var a = nn.Linear(Shape.InFeatures, rank, hasBias: false, device: device, dtype: dtype);
        var b = nn.Linear(rank, Shape.OutFeatures, hasBias: loraBias, device: device, dtype: dtype);
        using (torch.no_grad())
        {
            switch (init)
            {
                case LoraInit.Default:
                    nn.init.kaiming_uniform_(a.weight!, a: Math.Sqrt(5));
                    nn.init.zeros_(b.weight!);
                    break;
                case LoraInit.Gaussian:
                    nn.init.normal_(a.weight!, std: 1.0 / rank);
                    nn.init.zeros_(b.weight!);
                    break;
            }
            if (b.bias is not null) nn.init.zeros_(b.bias);
            InitialiseFromBase(a, b, rank, scaling, init, pissaIterations);
        }
        lora_dropout.Add(name, dropout > 0 ? nn.Dropout(dropout) : nn.Identity());
        lora_A.Add(name, a);
        lora_B.Add(name, b);
        _scaling[name] = scaling;
        if (useDora) lora_magnitude_vector.Add(name, new DoraMagnitude(WeightOutIn, torch.matmul(b.weight!, a.weight!), scaling));
    }

    /// <summary>True when the base weight is stored (in, out): GPT-2's Conv1D, or fan_in_fan_out.</summary>
    private bool Transposed => _fanInFanOut || Shape.Kind == SlotKind.Conv1D;

    /// <summary>The base weight in Linear's (out, in) layout (a view).</summary>
    private Tensor WeightOutIn => Transposed ? BaseWeight.T : BaseWeight;

    private Tensor? BaseBias => base_layer switch
    {
        Linear linear => linear.bias,
        Layers.Conv1D conv => conv.bias,
        IQuantizedLinear quantized => quantized.Bias,
        _ => null,
    };

    /// <inheritdoc />
    public override Tensor forward(Tensor input)
    {
        // Per-row adapters (LoraLayer.Routing.cs): the call's routing decides, not the active adapters.
        if (AdapterRouting.Current is { } routing) return RoutedForward(input, routing);
        var result = base_layer.call(input);
        if (BaseOnly) return result;
        using var scope = torch.NewDisposeScope();
        var dtype = result.dtype;
        var active = ActiveAdapters;
        for (int i = 0; i < active.Count; i++)
        {
            var name = active[i];
            if (MergedAdapters.Contains(name)) continue;
            var a = lora_A[name];
            var x = input.dtype == a.weight!.dtype ? input : input.to(a.weight.dtype);
            // p = 0 is an Identity module: calling it would only cost a module call and a tensor handle.
            var dropout = lora_dropout[name];
            var dropped = training && dropout is not Identity;
            if (dropped) x = dropout.call(x);
            if (lora_magnitude_vector.TryGetValue(name, out var dora))
            {
                // As the reference: the output so far stands for W·x + bias unless dropout changed x.
                result = result + dora.Update(x, a, lora_B[name], _scaling[name], WeightOutIn, BaseBias, dropped ? null : result);
                continue;
            }
            result = AddUpdate(result, x, a.weight, lora_B[name], _scaling[name]);
        }
        // The sum is in the adapter's (wider) dtype; hand the base layer's dtype on, as the reference does.
        return (result.dtype == dtype ? result : result.to(dtype)).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// <c>result + scaling · (x·Aᵀ)·Bᵀ</c> as one addmm over the flattened tokens, so no (tokens × out) update is
    /// materialised and the output is not passed over a second time (the floor: the base GEMM plus two thin ones).
    /// Without autograd the product is accumulated into the base output in place; with it, out of place, because an
    /// in-place add into a view (Conv1D's output is one) costs autograd a copy of the output gradient.
    /// Over a half-precision base the sum is formed in the adapter's float32, as the reference's type promotion forms
    /// it (<c>result + lora_B(lora_A(x)) * scaling</c> with a float32 update), and <see cref="forward"/> rounds it back
    /// once. Adding the float32 update into the bf16 output directly would take PyTorch's mixed-dtype elementwise loop,
    /// which costs more than casting the output up and adding with one same-dtype addmm (per-op profile:
    /// docs/PERFORMANCE.md, "LoRA's own cost").
    /// </summary>
    private Tensor AddUpdate(Tensor result, Tensor x, Tensor a, Linear b, double scaling)
    {
        // TorchSharp's addmm takes alpha as a float: a float64 adapter would use its scaling (α/√r for rsLoRA) rounded
        // to float32, so it adds with a double alpha instead.
        var adapterType = a.dtype;
        if (!FusedUpdate || b.bias is not null || adapterType == ScalarType.Float64)
        {
            return result.add(b.call(nn.functional.linear(x, a)), alpha: scaling);
        }
        var flatInput = x.reshape(-1, Shape.InFeatures);
        var inPlace = !torch.is_grad_enabled() || !(result.requires_grad || x.requires_grad || a.requires_grad || b.weight!.requires_grad);
        // x·Aᵀ in this order with and without autograd alike: (A·xᵀ)ᵀ measured 20–39 % faster alone, but without
        // gradients only (it hands the input gradient back transposed), and then a forward under no_grad would round
        // differently from the same forward under autograd, which gradient checkpointing's recomputation relies on.
        var thin = nn.functional.linear(flatInput, a);                                      // (N, r)
        var sum = result.dtype == adapterType ? result : result.to(adapterType);
        var flat = sum.view(-1, Shape.OutFeatures);                                         // (N, out)
        if (inPlace)
        {
            flat.addmm_(thin, b.weight!.T, beta: 1, alpha: (float)scaling);
            return sum;
        }
        return torch.addmm(flat, thin, b.weight!.T, beta: 1, alpha: (float)scaling).view(result.shape);
    }

    /// <summary>
    /// The benchmark's switch for the fused update (issue 20: each lever measured on and off in one run); off, the
    /// update is computed as <c>result + B(A(x)) · scaling</c> (over a half-precision base: a mixed-dtype add), the
    /// general path that a lora_B bias needs.
    /// </summary>
    internal static bool FusedUpdate { get; set; } = true;

    /// <inheritdoc />
    protected override Tensor Delta(string adapterName)
    {
        var delta = DeltaOutIn(adapterName);
        return (Transposed ? delta.T : delta).to(BaseDType);
    }

    private Tensor DeltaOutIn(string adapterName) =>
        torch.matmul(lora_B[adapterName].weight!, lora_A[adapterName].weight!) * _scaling[adapterName];

    /// <inheritdoc />
    public override string? MergeBlocker(string adapterName) =>
        lora_B.TryGetValue(adapterName, out var b) && b.bias is not null && BaseBias is null
            ? "it has `lora_bias=True` but the base layer has no bias to merge lora_B's bias into (the reference refuses this too)."
            : null;

    /// <summary>
    /// Plain LoRA adds its delta, DoRA writes <c>m/‖W+Δ‖ · (W + Δ)</c> (variants.py, DoraLinearVariant.merge_unsafe);
    /// with lora_bias, lora_B's bias · scaling goes into the base bias (as the reference merges).
    /// </summary>
    protected override void MergeAdapter(string adapterName)
    {
        if (lora_magnitude_vector.TryGetValue(adapterName, out var dora)) SetWeightOutIn(dora.Merged(WeightOutIn, DeltaOutIn(adapterName)));
        else AddToBaseWeight(Delta(adapterName));
        if (lora_B[adapterName].bias is { } bias) BaseBias!.add_((bias * _scaling[adapterName]).to(BaseBias.dtype));
    }

    /// <summary>Undoes <see cref="MergeAdapter"/>: DoRA divides the factor of its merge back out, then subtracts.</summary>
    protected override void UnmergeAdapter(string adapterName)
    {
        if (lora_magnitude_vector.TryGetValue(adapterName, out var dora)) SetWeightOutIn(dora.Unmerged(WeightOutIn, DeltaOutIn(adapterName)));
        else AddToBaseWeight(-Delta(adapterName));
        if (lora_B[adapterName].bias is { } bias) BaseBias!.sub_((bias * _scaling[adapterName]).to(BaseBias.dtype));
    }

    /// <inheritdoc />
    protected override bool MergesIntoQuantizedBase => true;

    private void SetWeightOutIn(Tensor value) => SetBaseWeight(Transposed ? value.T : value);

    Tensor ILoraFactors.FactorA(string adapterName) => lora_A[adapterName].weight!;

    Tensor ILoraFactors.FactorB(string adapterName) => lora_B[adapterName].weight!;

    double ILoraFactors.ScalingOf(string adapterName) => _scaling[adapterName];

    string? ILoraFactors.ProductBlocker => null;

    /// <summary>Whether <paramref name="adapterName"/> is a DoRA adapter (its magnitude vector is not a low-rank factor).</summary>
    internal bool IsDora(string adapterName) => lora_magnitude_vector.ContainsKey(adapterName);

    /// <inheritdoc />
    public override void DeleteAdapter(string adapterName)
    {
        if (!_scaling.Remove(adapterName)) return;
        lora_dropout.Remove(adapterName);
        lora_A.Remove(adapterName);
        lora_B.Remove(adapterName);
        lora_magnitude_vector.Remove(adapterName);
        ActiveAdapters = ActiveAdapters.Where(a => a != adapterName).ToArray();
    }
}
