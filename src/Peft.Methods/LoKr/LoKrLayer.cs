// LoKr for Linear layers, following peft/tuners/lokr/layer.py (LoKrLayer, Linear, factorization, make_kron).
using Peft.Methods.Lycoris;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Peft.Methods.LoKr;

/// <summary>
/// Low-rank Kronecker product: <c>ΔW = w1 ⊗ w2 · alpha / r</c>, with out = a·b and in = c·d split by
/// <see cref="Factorize"/>, w1 (a, c) and w2 (b, d). Either factor becomes a low-rank product
/// (<c>lokr_w1_a</c> (a, r) · <c>lokr_w1_b</c> (r, c)) when r is below half its larger side; w1 only with
/// <c>decompose_both</c>. Parameter names match the reference: <c>lokr_w1.&lt;adapter&gt;</c>, <c>lokr_w2_a.&lt;adapter&gt;</c>, ...
/// </summary>
public sealed class LoKrLayer : LycorisLayer
{
    private readonly ParameterDict lokr_w1 = new();
    private readonly ParameterDict lokr_w1_a = new();
    private readonly ParameterDict lokr_w1_b = new();
    private readonly ParameterDict lokr_w2 = new();
    private readonly ParameterDict lokr_w2_a = new();
    private readonly ParameterDict lokr_w2_b = new();

    /// <summary>Wraps <paramref name="baseLayer"/> (a Linear).</summary>
    public LoKrLayer(nn.Module<Tensor, Tensor> baseLayer) : base(nameof(LoKrLayer), baseLayer) => RegisterComponents();

    /// <summary>Adds adapter <paramref name="name"/> of rank <paramref name="rank"/>.</summary>
    /// <param name="name">The adapter's name.</param>
    /// <param name="rank">r.</param>
    /// <param name="alpha">alpha.</param>
    /// <param name="config">Decomposition, dropouts and initialisation.</param>
    public void AddAdapter(string name, int rank, double alpha, LoKrConfig config)
    {
        var (inM, inN) = Factorize(Shape.InFeatures, config.DecomposeFactor);
        var (outL, outK) = Factorize(Shape.OutFeatures, config.DecomposeFactor);
        // ((a, b), (c, d)): out = a·b, in = c·d; w1 is (a, c), w2 is (b, d).
        var useW1 = !(config.DecomposeBoth && rank < Math.Max(outL, inM) / 2.0);
        var useW2 = !(rank < Math.Max(outK, inN) / 2.0);

        var weight = BaseWeight;
        Parameter Factor(long rows, long cols) => new(torch.empty(rows, cols, dtype: weight.dtype, device: weight.device));
        // Which factor starts at zero: the left one by default, the right one the LyCORIS way, none when random.
        Parameter? w1 = null, w1a = null, w1b = null, w2 = null, w2a = null, w2b = null;
        if (useW1) w1 = Factor(outL, inM);
        else (w1a, w1b) = (Factor(outL, rank), Factor(rank, inM));
        if (useW2) w2 = Factor(outK, inN);
        else (w2a, w2b) = (Factor(outK, rank), Factor(rank, inN));
        using (torch.no_grad())
        {
            // The reference's order, so a seeded run draws the same numbers.
            Init(w1 ?? w1a!, zero: config.InitWeights == LoKrInit.Default);
            if (w1b is not null) Init(w1b, zero: false);
            if (w2 is not null) Init(w2, zero: config.InitWeights == LoKrInit.Lycoris);
            else
            {
                Init(w2a!, zero: false);
                Init(w2b!, zero: config.InitWeights == LoKrInit.Lycoris);
            }
        }
        if (w1 is not null) lokr_w1.Add((name, w1));
        else
        {
            lokr_w1_a.Add((name, w1a!));
            lokr_w1_b.Add((name, w1b!));
        }
        if (w2 is not null) lokr_w2.Add((name, w2));
        else
        {
            lokr_w2_a.Add((name, w2a!));
            lokr_w2_b.Add((name, w2b!));
        }
        AddSettings(name, new LycorisSettings(rank, alpha, config.RankDropout, config.RankDropoutScale, config.ModuleDropout));
    }

    private static void Init(Parameter p, bool zero)
    {
        if (zero) nn.init.zeros_(p);
        else nn.init.kaiming_uniform_(p, a: Math.Sqrt(5));
    }

    /// <inheritdoc />
    protected override Tensor DeltaWeight(string adapterName)
    {
        var w1 = lokr_w1.TryGetValue(adapterName, out var whole1) ? whole1 : torch.matmul(lokr_w1_a[adapterName], lokr_w1_b[adapterName]);
        var w2 = lokr_w2.TryGetValue(adapterName, out var whole2) ? whole2 : torch.matmul(lokr_w2_a[adapterName], lokr_w2_b[adapterName]);
        return torch.kron(w1, w2.contiguous()) * Settings(adapterName).Scaling;
    }

    /// <inheritdoc />
    protected override void RemoveParameters(string adapterName)
    {
        foreach (var dict in new[] { lokr_w1, lokr_w1_a, lokr_w1_b, lokr_w2, lokr_w2_a, lokr_w2_b })
        {
            if (dict.ContainsKey(adapterName)) dict.Remove(adapterName);
        }
    }

    /// <summary>
    /// The reference's <c>factorization</c>: splits <paramref name="dimension"/> into (m, n) with m·n = dimension.
    /// A positive <paramref name="factor"/> that divides it gives (factor, dimension / factor); otherwise the
    /// divisor pair closest to the square root whose smaller side does not exceed the factor (any, for -1), smaller first.
    /// </summary>
    public static (long M, long N) Factorize(long dimension, int factor = -1)
    {
        if (factor > 0 && dimension % factor == 0) return (factor, dimension / factor);
        long limit = factor == -1 ? dimension : factor;
        long m = 1, n = dimension;
        long length = m + n;
        while (m < n)
        {
            var nextM = m + 1;
            while (dimension % nextM != 0) nextM++;
            var nextN = dimension / nextM;
            if (nextM + nextN > length || nextM > limit) break;
            (m, n) = (nextM, nextN);
        }
        return m > n ? (n, m) : (m, n);
    }
}
