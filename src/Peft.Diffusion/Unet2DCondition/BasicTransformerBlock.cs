// diffusers' models/attention.py: BasicTransformerBlock with norm_type "layer_norm" (pre-norm self-attention,
// cross-attention and GEGLU feed-forward, each with a residual connection).
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Peft.Diffusion.Unet2DCondition;

/// <summary>x + attn1(norm1(x)); x + attn2(norm2(x), text); x + ff(norm3(x)).</summary>
public sealed class BasicTransformerBlock : nn.Module
{
    private readonly LayerNorm norm1;
    private readonly Attention attn1;
    private readonly LayerNorm norm2;
    private readonly Attention attn2;
    private readonly LayerNorm norm3;
    private readonly GegluFeedForward ff;

    /// <summary>A block over <paramref name="channels"/> with <paramref name="heads"/> heads attending to a <paramref name="contextDim"/>-wide context.</summary>
    public BasicTransformerBlock(int channels, int heads, int contextDim, double dropout, bool upcast) : base(nameof(BasicTransformerBlock))
    {
        var headDim = channels / heads;
        // Transformer2DModel's defaults: LayerNorms with eps 1e-5 and affine weights, attention without q/k/v bias.
        norm1 = nn.LayerNorm(channels, 1e-5);
        attn1 = new Attention(channels, null, heads, headDim, dropout, upcast);
        norm2 = nn.LayerNorm(channels, 1e-5);
        attn2 = new Attention(channels, contextDim, heads, headDim, dropout, upcast);
        norm3 = nn.LayerNorm(channels, 1e-5);
        ff = new GegluFeedForward(channels, dropout);
        RegisterComponents();
    }

    /// <summary>(B, N, C) tokens and the text context (B, S, C') → (B, N, C).</summary>
    public Tensor forward(Tensor hidden, Tensor context, Tensor? contextMask)
    {
        using var scope = torch.NewDisposeScope();
        hidden = attn1.forward(norm1.call(hidden), null, null) + hidden;
        hidden = attn2.forward(norm2.call(hidden), context, contextMask) + hidden;
        hidden = ff.call(norm3.call(hidden)) + hidden;
        return hidden.MoveToOuterDisposeScope();
    }
}
