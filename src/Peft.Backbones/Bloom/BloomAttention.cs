// BLOOM attention (ALiBi, fused head-interleaved query/key/value) and MLP, following transformers'
// models/bloom/modeling_bloom.py (eager attention; scaled_dot_product_attention computes the same, see FusedAttention).
using Peft.Modeling;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Peft.Backbones.Bloom;

/// <summary>
/// Causal self-attention with ALiBi position bias. <c>query_key_value</c> is fused per head: its
/// output feature <c>h·3D + j·D + d</c> is head h's query (j = 0), key (1) or value (2) at d.
/// </summary>
[TargetModules("query_key_value", "dense")]
public sealed partial class BloomAttention : nn.Module
{
    private nn.Module<Tensor, Tensor> query_key_value;
    private nn.Module<Tensor, Tensor> dense;
    private readonly Dropout attention_dropout;

    private readonly int _heads;
    private readonly int _headDim;
    private readonly double _invNormFactor;
    private readonly double _hiddenDropout;
    private readonly AttentionImplementation _attention;

    /// <summary>An attention layer sized by the config.</summary>
    public BloomAttention(BloomConfig config) : base("BloomAttention")
    {
        query_key_value = nn.Linear(config.HiddenSize, 3 * config.HiddenSize, hasBias: true);
        dense = nn.Linear(config.HiddenSize, config.HiddenSize);
        attention_dropout = nn.Dropout(config.AttentionDropout);
        _heads = config.NHead;
        _headDim = config.HeadDim;
        _invNormFactor = 1.0 / Math.Sqrt(_headDim);
        _hiddenDropout = config.HiddenDropout;
        _attention = config.AttnImplementation;
        RegisterComponents();
    }

    /// <summary>Attention over <paramref name="hidden"/> (B, T, C), added to <paramref name="residual"/>.</summary>
    /// <param name="hidden">Layer-normed input states.</param>
    /// <param name="residual">What the output is added to.</param>
    /// <param name="alibi">ALiBi bias, (B·H, 1, P + T).</param>
    /// <param name="mask">Additive causal and padding mask, (B, 1, T, P + T).</param>
    /// <param name="cache">Earlier keys/values (generation cache or prefixes); this step's are appended.</param>
    /// <param name="layerIndex">This layer's index in the cache.</param>
    public Tensor forward(Tensor hidden, Tensor residual, Tensor alibi, Tensor mask, KeyValueCache? cache, int layerIndex)
    {
        using var scope = torch.NewDisposeScope();
        var (batch, length) = (hidden.shape[0], hidden.shape[1]);
        var fused = query_key_value.call(hidden).view(batch, length, _heads, 3, _headDim);
        var query = fused.select(3, 0).transpose(1, 2);                      // (B, H, T, D)
        var key = fused.select(3, 1).transpose(1, 2);
        var value = fused.select(3, 2).transpose(1, 2);
        if (cache is not null)
        {
            (key, value) = cache.Append(layerIndex, key, value);             // (B, H, P + T, D)
        }
        var context = (FusedAttention.Use(_attention, query) ? Fused(query, key, value, alibi, mask) : Eager(query, key, value, alibi, mask))
            .permute(0, 2, 1, 3).reshape(batch, length, _heads * _headDim);     // (B, T, C)
        var output = nn.functional.dropout(dense.call(context), _hiddenDropout, training);
        return (residual + output).MoveToOuterDisposeScope();
    }

    // The reference's baddbmm(alibi, q, kᵀ, beta 1, alpha inv_norm_factor) + mask is softmax(q·kᵀ·inv_norm_factor + m)
    // with the additive float mask m = alibi (per head, per key) + mask: the kernel's own scale is inv_norm_factor.
    private Tensor Fused(Tensor query, Tensor key, Tensor value, Tensor alibi, Tensor mask)
    {
        var (batch, keyLength) = (query.shape[0], key.shape[2]);
        var bias = alibi.view(batch, _heads, 1, keyLength) + mask;          // (B, H, T, P + T)
        return FusedAttention.Compute(query, key, value, bias, _invNormFactor, attention_dropout.p, training);
    }

    // (B, H, T, D) from the explicit product, as the reference computes it on (B·H) batched matrices.
    private Tensor Eager(Tensor query, Tensor key, Tensor value, Tensor alibi, Tensor mask)
    {
        var (batch, length, keyLength) = (query.shape[0], query.shape[2], key.shape[2]);
        var q = query.reshape(batch * _heads, length, _headDim);
        var k = key.reshape(batch * _heads, keyLength, _headDim).transpose(-1, -2);
        var v = value.reshape(batch * _heads, keyLength, _headDim);

        // alibi + (q @ kᵀ) / sqrt(D), the reference's baddbmm (beta 1, alpha 1/sqrt(D)).
        var scores = (torch.bmm(q, k) * _invNormFactor + alibi).view(batch, _heads, length, keyLength) + mask;
        var probabilities = nn.functional.softmax(scores, dim: -1, dtype: ScalarType.Float32).to(q.dtype);
        probabilities = attention_dropout.call(probabilities);
        return torch.bmm(probabilities.view(batch * _heads, length, keyLength), v)   // (B·H, T, D)
            .view(batch, _heads, length, _headDim);
    }
}

/// <summary>The feed-forward block: dense_h_to_4h, BLOOM's tanh GELU, dense_4h_to_h, added to a residual.</summary>
[TargetModules("dense_h_to_4h", "dense_4h_to_h")]
public sealed partial class BloomMlp : nn.Module
{
    private nn.Module<Tensor, Tensor> dense_h_to_4h;
    private nn.Module<Tensor, Tensor> dense_4h_to_h;
    private readonly double _hiddenDropout;

    /// <summary>An MLP sized by the config.</summary>
    public BloomMlp(BloomConfig config) : base("BloomMLP")
    {
        dense_h_to_4h = nn.Linear(config.HiddenSize, 4 * config.HiddenSize);
        dense_4h_to_h = nn.Linear(4 * config.HiddenSize, config.HiddenSize);
        _hiddenDropout = config.HiddenDropout;
        RegisterComponents();
    }

    /// <summary>(B, T, C) → residual + MLP(hidden).</summary>
    public Tensor forward(Tensor hidden, Tensor residual)
    {
        using var scope = torch.NewDisposeScope();
        var output = dense_4h_to_h.call(Gelu(dense_h_to_4h.call(hidden)));
        return (residual + nn.functional.dropout(output, _hiddenDropout, training)).MoveToOuterDisposeScope();
    }

    /// <summary>BLOOM's GELU (tanh approximation with its own rounded constants).</summary>
    public static Tensor Gelu(Tensor x)
    {
        using var scope = torch.NewDisposeScope();
        return (x * 0.5 * (1.0 + torch.tanh(0.79788456 * x * (1 + 0.044715 * x * x)))).MoveToOuterDisposeScope();
    }
}
