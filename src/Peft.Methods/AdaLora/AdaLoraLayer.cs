// AdaLoRA's SVD-form layer for Linear and GPT-2 Conv1D, following peft/tuners/adalora/layer.py (SVDLinear).
using Peft.Tuners;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Peft.Methods.AdaLora;

/// <summary>
/// Adds <c>dropout(x) · (A ⊙ E)ᵀ · Bᵀ · lora_alpha / (ranknum + 1e-5)</c>: right singular vectors
/// <c>lora_A</c> (r, in), singular values <c>lora_E</c> (r, 1), left singular vectors <c>lora_B</c>
/// (out, r), and the frozen rank <c>ranknum</c> the scale divides by (not saved: it is the initial
/// rank). Parameter names match the reference: <c>lora_A.&lt;adapter&gt;</c>, saved as <c>lora_A</c>.
/// </summary>
public sealed class AdaLoraLayer : AdapterLayer
{
    /// <summary>The reference's guard in the scale's denominator.</summary>
    private const double RankEpsilon = 1e-5;

    private readonly AdapterModuleDict<nn.Module<Tensor, Tensor>> lora_dropout = new();
    private readonly ParameterDict lora_E = new();
    private readonly ParameterDict lora_A = new();
    private readonly ParameterDict lora_B = new();
    private readonly ParameterDict ranknum = new();
    private readonly Dictionary<string, double> _scaling = [];

    /// <summary>Wraps <paramref name="baseLayer"/> (Linear or Conv1D).</summary>
    public AdaLoraLayer(nn.Module<Tensor, Tensor> baseLayer) : base(nameof(AdaLoraLayer), baseLayer) => RegisterComponents();

    /// <inheritdoc />
    public override IReadOnlyCollection<string> AdapterNames => _scaling.Keys;

    /// <summary>lora_A of adapter <paramref name="name"/>, (r, in).</summary>
    public Parameter A(string name) => lora_A[name];

    /// <summary>lora_B of adapter <paramref name="name"/>, (out, r).</summary>
    public Parameter B(string name) => lora_B[name];

    /// <summary>lora_E of adapter <paramref name="name"/>, (r, 1).</summary>
    public Parameter E(string name) => lora_E[name];

    /// <summary>Adds adapter <paramref name="name"/> of rank <paramref name="rank"/>.</summary>
    /// <param name="name">The adapter's name.</param>
    /// <param name="rank">Its initial rank (init_r).</param>
    /// <param name="loraAlpha">The scale numerator; 0 or less means the rank.</param>
    /// <param name="dropout">Dropout on its input.</param>
    /// <param name="initWeights">E zeros and A, B normal with std 0.02 (true), or all standard normal (false).</param>
    public void AddAdapter(string name, int rank, double loraAlpha, double dropout, bool initWeights)
    {
        var weight = BaseWeight;
        var a = torch.randn(rank, Shape.InFeatures, dtype: weight.dtype, device: weight.device);
        var e = torch.randn(rank, 1, dtype: weight.dtype, device: weight.device);
        var b = torch.randn(Shape.OutFeatures, rank, dtype: weight.dtype, device: weight.device);
        if (initWeights)
        {
            e.zero_();
            a.normal_(0, 0.02);
            b.normal_(0, 0.02);
        }
        lora_dropout.Add(name, dropout > 0 ? nn.Dropout(dropout) : nn.Identity());
        lora_E.Add((name, new Parameter(e)));
        lora_A.Add((name, new Parameter(a)));
        lora_B.Add((name, new Parameter(b)));
        ranknum.Add((name, new Parameter(torch.full([1], (double)rank, dtype: weight.dtype, device: weight.device), requires_grad: false)));
        _scaling[name] = loraAlpha > 0 ? loraAlpha : rank;
    }

    /// <summary>
    /// Keeps only the triplets <paramref name="keep"/> marks (the reference's
    /// resize_modules_by_rank_pattern): A's rows, E's rows and B's columns shrink to the kept rank,
    /// while ranknum, and so the scale, stays as it was.
    /// </summary>
    public void Resize(string name, IReadOnlyList<bool> keep)
    {
        var rank = lora_E[name].shape[0];
        if (keep.Count != rank)
        {
            throw new InvalidDataException($"rank_pattern has {keep.Count} entries for a layer of rank {rank}.");
        }
        var index = torch.tensor(Enumerable.Range(0, keep.Count).Where(i => keep[i]).Select(i => (long)i).ToArray(), device: lora_E[name].device);
        using var noGrad = torch.no_grad();
        Replace(lora_E, name, lora_E[name].index_select(0, index));
        Replace(lora_A, name, lora_A[name].index_select(0, index));
        Replace(lora_B, name, lora_B[name].index_select(1, index));
    }

    private static void Replace(ParameterDict dict, string name, Tensor value)
    {
        var requiresGrad = dict[name].requires_grad;
        dict.Remove(name);
        dict.Add((name, new Parameter(value.contiguous(), requires_grad: requiresGrad)));
    }

    /// <inheritdoc />
    public override Tensor forward(Tensor input)
    {
        var result = base_layer.call(input);
        if (BaseOnly) return result;
        using var scope = torch.NewDisposeScope();
        foreach (var name in ActiveAdapters)
        {
            if (MergedAdapters.Contains(name)) continue;
            var a = lora_A[name];
            var x = lora_dropout[name].call(input.to(a.dtype));
            var update = torch.matmul(torch.matmul(x, (a * lora_E[name]).T), lora_B[name].T);
            result = result + update * _scaling[name] / (ranknum[name] + RankEpsilon);
        }
        return result.MoveToOuterDisposeScope();
    }

    /// <inheritdoc />
    protected override Tensor Delta(string adapterName)
    {
        var delta = torch.matmul(lora_B[adapterName], lora_A[adapterName] * lora_E[adapterName])
            * _scaling[adapterName] / (ranknum[adapterName] + RankEpsilon); // (out, in)
        // The reference corrects fan_in_fan_out by the layer: Conv1D always stores (in, out), Linear never.
        return Shape.Kind == SlotKind.Conv1D ? delta.T : delta;
    }

    /// <inheritdoc />
    public override void DeleteAdapter(string adapterName)
    {
        if (!_scaling.Remove(adapterName)) return;
        lora_dropout.Remove(adapterName);
        lora_E.Remove(adapterName);
        lora_A.Remove(adapterName);
        lora_B.Remove(adapterName);
        ranknum.Remove(adapterName);
        ActiveAdapters = ActiveAdapters.Where(a => a != adapterName).ToArray();
    }
}
