// OFT's rotation, following peft/tuners/oft/layer.py (OFTRotationModule).
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Peft.Methods.Oft;

/// <summary>
/// One adapter's orthogonal blocks: <c>weight</c> (blocks, b(b−1)/2) holds the upper triangle of each
/// block's skew-symmetric matrix Q; the block is its Cayley transform R = (I − Q)(I + Q)⁻¹, or the Neumann
/// approximation I + 2Q + 2Q² + … + Qⁿ⁻¹. The input's features, in consecutive groups of b, are multiplied by
/// the blocks: <c>x · blockdiag(R₁ … R_r)</c>.
/// </summary>
public sealed class OftRotation : nn.Module
{
#pragma warning disable IDE1006 // the reference's name
    private readonly Parameter weight;
#pragma warning restore IDE1006
    private readonly long[] _rows;
    private readonly long[] _columns;

    /// <summary>Blocks of size <paramref name="blockSize"/> covering <paramref name="inFeatures"/>, one parameter row per block (one in all with <c>block_share</c>).</summary>
    public OftRotation(int blocks, int blockSize, long inFeatures, OftConfig config, ScalarType dtype, Device device) : base(nameof(OftRotation))
    {
        Blocks = blocks;
        BlockSize = blockSize;
        InFeatures = inFeatures;
        Config = config;
        var rows = new List<long>();
        var columns = new List<long>();
        for (long i = 0; i < blockSize; i++)
        for (long j = i + 1; j < blockSize; j++)
        {
            rows.Add(i);
            columns.Add(j);
        }
        (_rows, _columns) = (rows.ToArray(), columns.ToArray());
        var w = torch.empty(config.BlockShare ? 1 : blocks, _rows.Length, dtype: dtype, device: device);
        using (torch.no_grad())
        {
            if (config.InitWeights) nn.init.zeros_(w);
            else nn.init.normal_(w, 0, 0.1);
        }
        weight = new Parameter(w);
        RegisterComponents();
    }

    /// <summary>r: blocks per layer.</summary>
    public int Blocks { get; }

    /// <summary>b: the block size.</summary>
    public int BlockSize { get; }

    /// <summary>The features the blocks cover.</summary>
    public long InFeatures { get; }

    private OftConfig Config { get; }

    /// <summary>The skew parameters.</summary>
    public Parameter Weight => weight;

    /// <summary>The orthogonal blocks (parameter rows, b, b), after COFT's projection when enabled.</summary>
    public Tensor Blocks3D()
    {
        if (Config.Coft)
        {
            using var noGrad = torch.no_grad();
            weight.copy_(Project(weight, Config.Eps));
        }
        return Cayley(Skew(weight));
    }

    /// <summary>Rotates the last dimension of <paramref name="x"/>.</summary>
    public Tensor Rotate(Tensor x)
    {
        var blocks = Blocks3D();
        var count = Config.BlockShare ? InFeatures / BlockSize : Blocks;
        if (Config.BlockShare) blocks = blocks.repeat(count, 1, 1);
        var grouped = x.to(weight.dtype).reshape([.. x.shape[..^1], count, BlockSize]);
        var rotated = torch.einsum("...rk,rkc->...rc", grouped, blocks);
        return rotated.reshape(x.shape).to(x.dtype);
    }

    /// <summary>blockdiag(R₁ … R_r), (in, in).</summary>
    public Tensor Matrix()
    {
        var blocks = Blocks3D();
        var count = Config.BlockShare ? (int)(InFeatures / BlockSize) : Blocks;
        return torch.block_diag(Enumerable.Range(0, count).Select(i => blocks[blocks.shape[0] == 1 ? 0 : i]).ToArray());
    }

    private Tensor Skew(Tensor vectors)
    {
        var matrix = torch.zeros(vectors.shape[0], BlockSize, BlockSize, dtype: vectors.dtype, device: vectors.device);
        matrix.index_put_(vectors, TensorIndex.Colon, TensorIndex.Tensor(torch.tensor(_rows)), TensorIndex.Tensor(torch.tensor(_columns)));
        return matrix - matrix.transpose(-2, -1);
    }

    private Tensor Cayley(Tensor q)
    {
        var count = q.shape[0];
        var identity = torch.eye(BlockSize, dtype: q.dtype, device: q.device).repeat(count, 1, 1);
        if (!Config.UseCayleyNeumann)
        {
            // X (I + Q) = I − Q, solved as the reference's linalg.solve(..., left=False).
            return torch.linalg.solve(identity + q, identity - q, left: false);
        }
        var terms = Config.NumCayleyNeumannTerms;
        var r = identity;
        if (terms > 1)
        {
            r = r + 2 * q;
            if (terms > 2)
            {
                var power = torch.bmm(q, q);
                r = r + 2 * power;
                for (int i = 3; i < terms - 1; i++)
                {
                    power = torch.bmm(power, q);
                    r = r + 2 * power;
                }
                power = torch.bmm(power, q);
                r = r + power;
            }
        }
        return r;
    }

    /// <summary>COFT: each block's skew matrix, if its norm exceeds eps / √blocks, is scaled back onto that radius.</summary>
    private Tensor Project(Tensor vectors, double eps)
    {
        var skew = Skew(vectors);
        var radius = eps / Math.Sqrt(skew.shape[0]);
        var norm = torch.linalg.norm(skew, dims: [1, 2], keepdim: true);
        var projected = torch.where(norm.le(radius), skew, radius * (skew / norm));
        return projected.index(TensorIndex.Colon, TensorIndex.Tensor(torch.tensor(_rows)), TensorIndex.Tensor(torch.tensor(_columns)));
    }
}
