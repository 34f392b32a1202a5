// BOFT for Linear layers, following peft/tuners/boft/layer.py (BOFTLayer, Linear, MultiplicativeDropoutLayer).
using Peft.Tuners;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Peft.Methods.Boft;

/// <summary>
/// Butterfly orthogonal fine-tuning: the input is rotated by a product of m butterfly factors
/// <c>Pᵢ blockdiag(Rᵢ) Pᵢᵀ</c>, each block the Cayley transform of a skew matrix, and the output is scaled per
/// feature: <c>(base(x M) − bias) ⊙ s + bias</c>. Parameter names match the reference: <c>boft_R.&lt;adapter&gt;</c>
/// (m, blocks, b, b) and <c>boft_s.&lt;adapter&gt;</c> (out, 1). Merging folds both into the weight.
/// </summary>
public sealed class BoftLayer : AdapterLayer
{
    private readonly ParameterDict boft_R = new();
    private readonly ParameterDict boft_s = new();
    private readonly AdapterModuleDict<Permutations> boft_P = new();
    private readonly Dictionary<string, double> _dropout = [];

    /// <summary>Wraps <paramref name="baseLayer"/> (a Linear).</summary>
    public BoftLayer(nn.Module<Tensor, Tensor> baseLayer) : base(nameof(BoftLayer), baseLayer) => RegisterComponents();

    /// <inheritdoc />
    public override IReadOnlyCollection<string> AdapterNames => _dropout.Keys;

    /// <summary>Adds adapter <paramref name="name"/>, checking the block layout against in_features as the reference does.</summary>
    /// <exception cref="PeftConfigException">The block size, block count and butterfly factors do not fit this layer.</exception>
    public void AddAdapter(string name, BoftConfig config)
    {
        var inFeatures = Shape.InFeatures;
        var factors = config.BoftNButterflyFactor - 1; // the paper's notation: extra factors beyond the first
        long blockSize = config.BoftBlockSize, blockNum = config.BoftBlockNum;
        if (blockSize == 0)
        {
            if (inFeatures % blockNum != 0) throw new PeftConfigException($"in_features ({inFeatures}) must be divisible by boft_block_num ({blockNum})!");
            if (factors != 0 && (factors > (int)Math.Log2(blockNum) || blockNum % (1L << factors) != 0))
            {
                throw new PeftConfigException($"Invalid combination of boft_n_butterfly_factor ({factors + 1}) and boft_block_num ({blockNum})!");
            }
            blockSize = inFeatures / blockNum;
        }
        else
        {
            if (inFeatures % blockSize != 0) throw new PeftConfigException($"in_features ({inFeatures}) must be divisible by boft_block_size ({blockSize})!");
            if (factors != 0 && inFeatures % (blockSize * (1L << factors)) != 0)
            {
                throw new PeftConfigException(
                    $"Invalid combination of in_features ({inFeatures}), boft_n_butterfly_factor ({factors + 1}) and boft_block_size ({blockSize})!");
            }
            blockNum = inFeatures / blockSize;
        }
        if (factors != 0 && (blockNum % 2 != 0 || blockSize % 2 != 0))
        {
            throw new PeftConfigException($"boft_block_num ({blockNum}) and boft_block_size ({blockSize}) must be even numbers with boft_n_butterfly_factor > 1!");
        }

        var weight = BaseWeight;
        var permutations = new Permutations(Enumerable.Range(0, factors + 1)
            .Select(i => Butterfly.Matrix(Butterfly.Permutation(inFeatures, blockNum / (1L << i), blockSize / 2, factors)))
            .ToArray());
        var r = torch.zeros(factors + 1, blockNum, blockSize, blockSize, dtype: weight.dtype, device: weight.device);
        var s = torch.ones(Shape.OutFeatures, 1, dtype: weight.dtype, device: weight.device);
        if (!config.InitWeights)
        {
            using var noGrad = torch.no_grad();
            nn.init.normal_(r, 0, 0.1);
            nn.init.normal_(s, 1, 0.1);
        }
        boft_R.Add((name, new Parameter(r)));
        boft_s.Add((name, new Parameter(s)));
        boft_P.Add(name, permutations);
        _dropout[name] = config.BoftDropout;
    }

    /// <summary>The adapter's rotation M (in, in): the product of its butterfly factors, the first applied first.</summary>
    private Tensor Rotation(string adapterName, bool dropout)
    {
        var r = boft_R[adapterName];
        long n = r.shape[0], d = r.shape[1], h = r.shape[2];
        var blocks = Cayley(r.view(n * d, h, h)).view(n, d, h, h);
        if (dropout && _dropout[adapterName] > 0) blocks = DropBlocks(blocks, _dropout[adapterName]);
        var diagonal = torch.stack(Enumerable.Range(0, (int)n).Select(i => torch.block_diag(blocks[i].unbind(0))).ToArray()); // (n, in, in)
        var p = boft_P[adapterName].P.to(diagonal.dtype, diagonal.device);
        var batch = torch.bmm(p, torch.bmm(diagonal, p.permute(0, 2, 1)));
        var matrix = batch[0];
        for (int i = 1; i < n; i++) matrix = torch.matmul(batch[i], matrix);
        return matrix;
    }

    /// <summary>(I − S)(I + S)⁻¹ with S the skew part of each block, as the reference's <c>cayley_batch</c>.</summary>
    private static Tensor Cayley(Tensor data)
    {
        var skew = 0.5 * (data - data.transpose(1, 2));
        var identity = torch.eye(data.shape[1], dtype: data.dtype, device: data.device).unsqueeze(0).expand(data.shape[0], -1, -1);
        return torch.linalg.solve(identity + skew, identity - skew, left: false);
    }

    /// <summary>The reference's multiplicative dropout: in one random factor, int(p · blocks) random blocks become the identity.</summary>
    private static Tensor DropBlocks(Tensor blocks, double p)
    {
        long n = blocks.shape[0], d = blocks.shape[1], h = blocks.shape[2];
        var chosen = torch.randint(0, n, [1]).item<long>();
        var replaced = (long)(p * d);
        var mask = torch.cat([torch.ones(replaced), torch.zeros(d - replaced)])[torch.randperm(d)].view(1, d, 1, 1);
        var full = torch.zeros(n, d, 1, 1);
        full[chosen] = mask[0];
        full = full.to(blocks.dtype, blocks.device);
        var eye = torch.eye(h, dtype: blocks.dtype, device: blocks.device).repeat(n, d, 1, 1);
        return (1 - full) * blocks + full * eye;
    }

    private Tensor? Bias => (base_layer as Linear)?.bias;

    /// <inheritdoc />
    public override Tensor forward(Tensor input)
    {
        if (BaseOnly) return base_layer.call(input);
        using var scope = torch.NewDisposeScope();
        var rotation = torch.eye(Shape.InFeatures, dtype: input.dtype, device: input.device);
        var scale = torch.ones(Shape.OutFeatures, 1, dtype: input.dtype, device: input.device);
        foreach (var name in ActiveAdapters)
        {
            if (MergedAdapters.Contains(name)) continue;
            rotation = torch.matmul(Rotation(name, dropout: training).to(input.dtype), rotation);
            scale = boft_s[name] * scale;
        }
        var result = base_layer.call(torch.matmul(input, rotation));
        var bias = Bias;
        if (bias is not null) result = result - bias;
        result = result * scale.squeeze(-1);
        if (bias is not null) result = result + bias;
        return result.MoveToOuterDisposeScope();
    }

    /// <summary>Wᵀ ← M Wᵀ, then each output row scaled by s.</summary>
    protected override void MergeAdapter(string adapterName)
    {
        var weight = BaseWeight;
        var rotation = Rotation(adapterName, dropout: false);
        var merged = torch.mm(rotation, weight.T.to(rotation.dtype)).T * boft_s[adapterName];
        weight.copy_(merged);
    }

    /// <summary>Wᵀ ← Mᵀ Wᵀ (M is orthogonal), then each output row divided by s.</summary>
    protected override void UnmergeAdapter(string adapterName)
    {
        var weight = BaseWeight;
        var rotation = Rotation(adapterName, dropout: false);
        var restored = torch.mm(rotation.T, weight.T.to(rotation.dtype)).T * (1 / boft_s[adapterName]);
        weight.copy_(restored);
    }

    /// <inheritdoc />
    public override void DeleteAdapter(string adapterName)
    {
        if (!_dropout.Remove(adapterName)) return;
        boft_R.Remove(adapterName);
        boft_s.Remove(adapterName);
        boft_P.Remove(adapterName);
        ActiveAdapters = ActiveAdapters.Where(a => a != adapterName).ToArray();
    }

    /// <summary>An adapter's permutation matrices (factors, in, in), a buffer so that moving the layer moves them.</summary>
    private sealed class Permutations : nn.Module
    {
#pragma warning disable IDE1006 // registered buffer
        private Tensor boft_P;
#pragma warning restore IDE1006

        public Permutations(Tensor[] matrices) : base(nameof(Permutations))
        {
            boft_P = torch.stack(matrices).DetachFromDisposeScope();
            RegisterComponents();
        }

        public Tensor P => boft_P;
    }
}
