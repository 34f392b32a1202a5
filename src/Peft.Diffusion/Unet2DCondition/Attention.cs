// diffusers' models/attention_processor.py: Attention with AttnProcessor2_0 (bias-free q/k/v, biased to_out.0).
using TorchSharp;
using static TorchSharp.torch;

namespace Peft.Diffusion.Unet2DCondition;

/// <summary>
/// Multi-head attention of a transformer block: self-attention (<c>attn1</c>, keys from the image tokens) or
/// cross-attention (<c>attn2</c>, keys and values from the text encoder's hidden states).
/// </summary>
[TargetModules("to_q", "to_k", "to_v")]
public sealed partial class Attention : nn.Module
{
    private nn.Module<Tensor, Tensor> to_q;
    private nn.Module<Tensor, Tensor> to_k;
    private nn.Module<Tensor, Tensor> to_v;
    private readonly AttentionOutput to_out;
    private readonly int _heads;
    private readonly int _headDim;
    private readonly bool _upcast;

    /// <summary>Attention over <paramref name="queryDim"/> channels; keys and values from <paramref name="contextDim"/> (null: the same tokens).</summary>
    /// <param name="queryDim">Channels of the image tokens.</param>
    /// <param name="contextDim">Channels of the cross-attention context, or null for self-attention.</param>
    /// <param name="heads">Attention heads.</param>
    /// <param name="headDim">Size of each head.</param>
    /// <param name="dropout">Dropout after the output projection.</param>
    /// <param name="upcast">Compute the scores in float32 (diffusers' <c>upcast_attention</c>).</param>
    public Attention(int queryDim, int? contextDim, int heads, int headDim, double dropout, bool upcast) : base(nameof(Attention))
    {
        var inner = heads * headDim;
        to_q = nn.Linear(queryDim, inner, hasBias: false);
        to_k = nn.Linear(contextDim ?? queryDim, inner, hasBias: false);
        to_v = nn.Linear(contextDim ?? queryDim, inner, hasBias: false);
        to_out = new AttentionOutput(inner, queryDim, dropout);
        _heads = heads;
        _headDim = headDim;
        _upcast = upcast;
        RegisterComponents();
    }

    /// <summary>(B, N, C) queries; <paramref name="context"/> (B, S, C') or null; <paramref name="mask"/> additive (B, 1, 1, S) or null → (B, N, C).</summary>
    public Tensor forward(Tensor hidden, Tensor? context, Tensor? mask)
    {
        using var scope = torch.NewDisposeScope();
        var source = context ?? hidden;
        var batch = hidden.shape[0];
        var q = Heads(to_q.call(hidden), batch);                                   // (B, H, N, d)
        var k = Heads(to_k.call(source), batch);                                   // (B, H, S, d)
        var v = Heads(to_v.call(source), batch);
        var scores = _upcast ? torch.matmul(q.to(ScalarType.Float32), k.to(ScalarType.Float32).transpose(-1, -2)) : torch.matmul(q, k.transpose(-1, -2));
        scores = scores * (1.0 / Math.Sqrt(_headDim));
        if (mask is not null) scores = scores + mask.to(scores.dtype);
        // Softmax in float32 (a no-op for float32 models) keeps half-precision models from overflowing.
        var probabilities = nn.functional.softmax(scores, -1, ScalarType.Float32).to(v.dtype);
        var output = torch.matmul(probabilities, v).transpose(1, 2).reshape(batch, -1, _heads * _headDim);
        return to_out.call(output).MoveToOuterDisposeScope();
    }

    private Tensor Heads(Tensor x, long batch) => x.view(batch, -1, _heads, _headDim).transpose(1, 2);
}
