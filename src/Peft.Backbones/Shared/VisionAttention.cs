// The eager attention of transformers' vision models (ViT, Swin, SegFormer: eager_attention_forward).
using TorchSharp;
using static TorchSharp.torch;

namespace Peft.Backbones.Shared;

/// <summary>Softmax attention with an optional additive bias, as transformers' vision models compute it.</summary>
public static class VisionAttention
{
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
