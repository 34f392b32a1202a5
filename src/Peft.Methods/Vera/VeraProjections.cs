// VeRA's shared frozen projections, following peft/tuners/vera/model.py (_init_vera_A_vera_B, _kaiming_init).
using TorchSharp;
using static TorchSharp.torch;

namespace Peft.Methods.Vera;

/// <summary>
/// The frozen random matrices every layer of one VeRA adapter shares: <c>vera_A</c> (r, largest in) and
/// <c>vera_B</c> (largest out, r), drawn in that order from a CPU generator seeded with
/// <c>projection_prng_key</c>, each uniform in ±√3·√2/√fan_in (the reference's <c>_kaiming_init</c>), so a
/// seed gives the reference's values bit for bit. Registered (as buffers) under each layer that reads them,
/// so moving the model moves them; saved once as <c>base_model.vera_A</c> / <c>base_model.vera_B</c>.
/// </summary>
public sealed class VeraProjections : nn.Module
{
#pragma warning disable IDE1006 // the reference's names
    private Tensor vera_A;
    private Tensor vera_B;
#pragma warning restore IDE1006

    /// <summary>Draws the projections for rank <paramref name="rank"/> and the largest target sizes.</summary>
    public VeraProjections(int rank, long inFeatures, long outFeatures, long seed, bool saved) : base(nameof(VeraProjections))
    {
        Rank = rank;
        Seed = seed;
        Saved = saved;
        using var generator = new torch.Generator().manual_seed(seed);
        vera_A = KaimingUniform(rank, inFeatures, generator);
        vera_B = KaimingUniform(outFeatures, rank, generator);
        RegisterComponents();
    }

    /// <summary>r.</summary>
    public int Rank { get; }

    /// <summary>The generator seed (<c>projection_prng_key</c>).</summary>
    public long Seed { get; }

    /// <summary>Whether adapter files carry the projections (<c>save_projection</c>).</summary>
    public bool Saved { get; }

    /// <summary>(r, largest in_features).</summary>
    public Tensor A => vera_A;

    /// <summary>(largest out_features, r).</summary>
    public Tensor B => vera_B;

    /// <summary>The reference's <c>_kaiming_init</c>: float32, uniform in ±√3 · √2 / √(columns), from <paramref name="generator"/>.</summary>
    private static Tensor KaimingUniform(long rows, long columns, torch.Generator generator)
    {
        var std = Math.Sqrt(2.0) / Math.Sqrt(columns); // the reference's order of operations, for the same bound to the last bit
        var bound = Math.Sqrt(3.0) * std;
        using var noGrad = torch.no_grad();
        return torch.empty(rows, columns, dtype: ScalarType.Float32).uniform_(-bound, bound, generator).DetachFromDisposeScope();
    }
}
