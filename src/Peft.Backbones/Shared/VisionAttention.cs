// The eager attention of transformers' vision models (ViT, Swin, SegFormer: eager_attention_forward).
using Peft.Modeling;
using TorchSharp;
using static TorchSharp.torch;

namespace Peft.Backbones.Shared;

/// <summary>Softmax attention with an optional additive bias, as transformers' vision models compute it.</summary>
public static class VisionAttention
{
    /// <summary>
    /// softmax(q·kᵀ / √d + <paramref name="bias"/>) · v, through the fused kernel (the bias as its additive mask) or
    /// <see cref="Eager"/>, as <paramref name="implementation"/> asks (see <see cref="FusedAttention.Use"/>).
    /// </summary>
    public static Tensor Compute(AttentionImplementation implementation, Tensor q, Tensor k, Tensor v, Tensor? bias, double dropout, bool training) =>
        FusedAttention.Use(implementation, q)
            ? FusedAttention.Compute(q, k, v, bias, 1.0 / Math.Sqrt(q.shape[^1]), dropout, training)
            : Eager(q, k, v, bias, dropout, training);

    /// <summary>
    /// softmax(q·kᵀ / √d + <paramref name="bias"/>) · v over (B, heads, T, d) inputs; the probabilities are
    /// computed in float32 and dropped out with <paramref name="dropout"/> in training.
    /// </summary>
    public static Tensor Eager(Tensor q, Tensor k, Tensor v, Tensor? bias, double dropout, bool training)
    {
        using var scope = torch.NewDisposeScope();
        var scores = torch.matmul(q, k.transpose(-1, -2)) * (1.0 / Math.Sqrt(q.shape[^1]));
        if (bias is not null) scores = scores + bias;
        var probs = nn.functional.softmax(scores, -1, ScalarType.Float32).to(q.dtype);
        if (training && dropout > 0) probs = nn.functional.dropout(probs, dropout, training: true);
        return torch.matmul(probs, v).MoveToOuterDisposeScope();
    }
}
