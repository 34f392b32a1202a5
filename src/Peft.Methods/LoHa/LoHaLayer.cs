// LoHa for Linear layers, following peft/tuners/loha/layer.py (LoHaLayer, Linear, HadaWeight).
using Peft.Methods.Lycoris;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Peft.Methods.LoHa;

/// <summary>
/// Low-rank Hadamard product (FedPara): <c>ΔW = (w1_a w1_b) ⊙ (w2_a w2_b) · alpha / r</c>. Parameter names
/// match the reference: <c>hada_w1_a.&lt;adapter&gt;</c> (out, r), <c>hada_w1_b.&lt;adapter&gt;</c> (r, in), and
/// the same for <c>hada_w2_*</c>.
/// </summary>
public sealed class LoHaLayer : LycorisLayer
{
    private readonly ParameterDict hada_w1_a = new();
    private readonly ParameterDict hada_w1_b = new();
    private readonly ParameterDict hada_w2_a = new();
    private readonly ParameterDict hada_w2_b = new();

    /// <summary>Wraps <paramref name="baseLayer"/> (a Linear).</summary>
    public LoHaLayer(nn.Module<Tensor, Tensor> baseLayer) : base(nameof(LoHaLayer), baseLayer) => RegisterComponents();

    /// <summary>Adds adapter <paramref name="name"/> of rank <paramref name="rank"/>.</summary>
    /// <param name="name">The adapter's name.</param>
    /// <param name="rank">r.</param>
    /// <param name="alpha">alpha.</param>
    /// <param name="config">Dropouts and initialisation.</param>
    public void AddAdapter(string name, int rank, double alpha, LoHaConfig config)
    {
        var weight = BaseWeight;
        Parameter Factor(long rows, long cols) => new(torch.empty(rows, cols, dtype: weight.dtype, device: weight.device));
        var w1a = Factor(Shape.OutFeatures, rank);
        var w1b = Factor(rank, Shape.InFeatures);
        var w2a = Factor(Shape.OutFeatures, rank);
        var w2b = Factor(rank, Shape.InFeatures);
        using (torch.no_grad())
        {
            // He initialisation as FedPara proposes; a zero w2_b alone makes the update start at zero.
            foreach (var p in new[] { w1a, w1b, w2a }) nn.init.kaiming_uniform_(p, a: Math.Sqrt(5));
            if (config.InitWeights) nn.init.zeros_(w2b);
            else nn.init.kaiming_uniform_(w2b, a: Math.Sqrt(5));
        }
        hada_w1_a.Add((name, w1a));
        hada_w1_b.Add((name, w1b));
        hada_w2_a.Add((name, w2a));
        hada_w2_b.Add((name, w2b));
        AddSettings(name, new LycorisSettings(rank, alpha, config.RankDropout, RankDropoutScale: true, config.ModuleDropout));
    }

    /// <inheritdoc />
    protected override Tensor DeltaWeight(string adapterName)
    {
        var first = torch.matmul(hada_w1_a[adapterName], hada_w1_b[adapterName]);
        var second = torch.matmul(hada_w2_a[adapterName], hada_w2_b[adapterName]);
        return first * second * Settings(adapterName).Scaling;
    }

    /// <inheritdoc />
    protected override void RemoveParameters(string adapterName)
    {
        hada_w1_a.Remove(adapterName);
        hada_w1_b.Remove(adapterName);
        hada_w2_a.Remove(adapterName);
        hada_w2_b.Remove(adapterName);
    }
}
