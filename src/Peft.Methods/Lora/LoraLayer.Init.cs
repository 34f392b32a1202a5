// The data-driven LoRA initialisations, following peft/tuners/lora/layer.py (pissa_init, olora_init,
// orthogonal_init) and torch's svd_lowrank for "pissa_niter_N".
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Peft.Methods.Lora;

public sealed partial class LoraLayer
{
    /// <summary>
    /// PiSSA, OLoRA and orthogonal initialisation (no-op for the others, which AddAdapter handles).
    /// PiSSA and OLoRA put the top-r part of the base weight into B·A·scaling and leave the residual
    /// in the base weight, so the adapted model starts exactly at the base model's outputs.
    /// </summary>
    private void InitialiseFromBase(Linear a, Linear b, int rank, double scaling, LoraInit init, int pissaIterations)
    {
        switch (init)
        {
            case LoraInit.Pissa or LoraInit.PissaLowRank:
            {
                var weight = Float32WeightOutIn();
                Tensor v, s, uh;
                if (init == LoraInit.Pissa)
                {
                    var (u, sAll, vh) = torch.linalg.svd(weight, fullMatrices: false); // W = V·S·Uhᵀ in the reference's names
                    (v, s, uh) = (u[.., ..rank], sAll[..rank], vh[..rank]);
                }
                else
                {
                    var (u, sLow, vLow) = SvdLowRank(weight, rank, pissaIterations);
                    (v, s, uh) = (u, sLow, vLow.t());
                }
                s = s / scaling;
                var sqrt = torch.diag(s.sqrt());
                SetWeights(a, b, torch.matmul(sqrt, uh), torch.matmul(v, sqrt), residualOf: weight, scaling);
                break;
            }
            case LoraInit.Olora:
            {
                var weight = Float32WeightOutIn();
                var (q, r) = torch.linalg.qr(weight);
                SetWeights(a, b, r[..rank], q[.., ..rank], residualOf: weight, scaling);
                break;
            }
            case LoraInit.Orthogonal:
            {
                // Rows of one orthogonal matrix split into odd and even: B·A = 0 although neither is zero.
                var (q, _) = torch.linalg.qr(torch.randn(rank, rank));
                var odd = q[TensorIndex.Slice(0, null, 2)];
                var even = q[TensorIndex.Slice(1, null, 2)];
                var newA = torch.randn(Shape.InFeatures, rank / 2).mm(odd).T / 10.0;
                var newB = torch.randn(rank / 2, Shape.OutFeatures).T.mm(even) / 10.0;
                a.weight!.copy_(newA);
                b.weight!.copy_(newB);
                break;
            }
        }
    }

    /// <summary>The base weight as float32 (out, in), whatever its dtype and layout.</summary>
    private Tensor Float32WeightOutIn()
    {
        var weight = BaseWeight.detach().to(ScalarType.Float32);
        return _fanInFanOut ? weight.T.contiguous() : weight;
    }

    /// <summary>Sets A and B and replaces the base weight by W − scaling · B·A (the reference's residual).</summary>
    private void SetWeights(Linear a, Linear b, Tensor newA, Tensor newB, Tensor residualOf, double scaling)
    {
        a.weight!.copy_(newA);
        b.weight!.copy_(newB);
        var residual = residualOf - scaling * torch.matmul(newB, newA);
        BaseWeight.copy_(_fanInFanOut ? residual.T : residual);
    }

    /// <summary>
    /// torch.svd_lowrank(A, q, niter) (Halko et al., 2009): a rank-<paramref name="q"/> SVD from a
    /// random projection refined by <paramref name="iterations"/> power iterations. Returns U (m, q), S (q), V (n, q).
    /// </summary>
    private static (Tensor U, Tensor S, Tensor V) SvdLowRank(Tensor matrix, int q, int iterations)
    {
        var (m, n) = (matrix.shape[0], matrix.shape[1]);
        if (m < n)
        {
            var (ut, st, vt) = SvdLowRank(matrix.T, q, iterations);
            return (vt, st, ut);
        }
        var basis = torch.linalg.qr(torch.matmul(matrix, torch.randn(n, q, dtype: matrix.dtype))).Q;
        for (int i = 0; i < iterations; i++)
        {
            basis = torch.linalg.qr(torch.matmul(matrix.T, basis)).Q;
            basis = torch.linalg.qr(torch.matmul(matrix, basis)).Q;
        }
        var (u, s, vh) = torch.linalg.svd(torch.matmul(basis.T, matrix), fullMatrices: false);
        return (torch.matmul(basis, u), s, vh.T);
    }
}
