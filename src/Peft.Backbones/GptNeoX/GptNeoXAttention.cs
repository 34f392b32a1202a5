// GPT-NeoX attention and MLP, following transformers' models/gpt_neox/modeling_gpt_neox.py (eager attention; scaled_dot_product_attention computes the same, see FusedAttention).
using Peft.Backbones.Shared;
using Peft.Modeling;
using TorchSharp;
using static TorchSharp.torch;

namespace Peft.Backbones.GptNeoX;

/// <summary>
/// Causal self-attention with a fused <c>query_key_value</c> projection laid out per head
/// ([q, k, v] of head 0, then of head 1, ...), rotary positions on part of each head.
/// </summary>
[TargetModules("query_key_value", "dense")]
public sealed partial class GptNeoXAttention : nn.Module
{
    private nn.Module<Tensor, Tensor> query_key_value;
    private nn.Module<Tensor, Tensor> dense;

    private readonly int _heads;
    private readonly int _headDim;
    private readonly double _scaling;
    private readonly double _dropout;
    private readonly AttentionImplementation _attention;

    /// <summary>An attention layer sized by the config.</summary>
    public GptNeoXAttention(GptNeoXConfig config) : base("GPTNeoXAttention")
    {
        _heads = config.NumAttentionHeads;
        _headDim = config.HeadDim;
        _scaling = Math.Pow(_headDim, -0.5);
        _dropout = config.AttentionDropout;
        _attention = config.AttnImplementation;
        query_key_value = nn.Linear(config.HiddenSize, 3 * config.HiddenSize, hasBias: config.AttentionBias);
        dense = nn.Linear(config.HiddenSize, config.HiddenSize, hasBias: config.AttentionBias);
        RegisterComponents();
    }

    /// <summary>Runs attention over <paramref name="hidden"/> (B, T, C).</summary>
    /// <param name="hidden">Input states.</param>
    /// <param name="mask">Additive causal and padding mask, (B, 1, T, P + T).</param>
    /// <param name="cos">Rotary cosines for these positions, (B, T, rotary).</param>
    /// <param name="sin">Rotary sines, (B, T, rotary).</param>
    /// <param name="cache">Earlier keys/values (generation cache or prefixes); this step's are appended.</param>
    /// <param name="layerIndex">This layer's index in the cache.</param>
    public Tensor forward(Tensor hidden, Tensor mask, Tensor cos, Tensor sin, KeyValueCache? cache, int layerIndex)
    {
        using var scope = torch.NewDisposeScope();
        var (batch, length) = (hidden.shape[0], hidden.shape[1]);
        var qkv = query_key_value.call(hidden).view(batch, length, _heads, 3 * _headDim).transpose(1, 2); // (B, H, T, 3D)
        var parts = qkv.chunk(3, dim: -1);
        var query = RotaryEmbedding.Apply(parts[0], cos, sin);                // (B, H, T, D)
        var key = RotaryEmbedding.Apply(parts[1], cos, sin);
        var value = parts[2];
        if (cache is not null)
        {
            (key, value) = cache.Append(layerIndex, key, value);             // (B, H, P + T, D)
        }

        var output = (FusedAttention.Use(_attention, query)
                ? FusedAttention.Compute(query, key, value, mask, _scaling, _dropout, training)
                : Eager(query, key, value, mask))                             // (B, H, T, D)
            .transpose(1, 2).reshape(batch, length, -1);
        return dense.call(output).MoveToOuterDisposeScope();
    }

    // (B, H, T, D): the reference's eager_attention_forward, softmax in float32.
    private Tensor Eager(Tensor query, Tensor key, Tensor value, Tensor mask)
    {
        var scores = torch.matmul(query, key.transpose(2, 3)) * _scaling + mask;
        var probabilities = nn.functional.softmax(scores, dim: -1, dtype: ScalarType.Float32).to(query.dtype);
        probabilities = nn.functional.dropout(probabilities, _dropout, training);
        return torch.matmul(probabilities, value);
    }
}

/// <summary>The feed-forward block: dense_h_to_4h, activation, dense_4h_to_h.</summary>
[TargetModules("dense_h_to_4h", "dense_4h_to_h")]
public sealed partial class GptNeoXMlp : nn.Module<Tensor, Tensor>
{
    private nn.Module<Tensor, Tensor> dense_h_to_4h;
    private nn.Module<Tensor, Tensor> dense_4h_to_h;
    private readonly Func<Tensor, Tensor> _activation;

    /// <summary>An MLP sized by the config.</summary>
    public GptNeoXMlp(GptNeoXConfig config) : base("GPTNeoXMLP")
    {
        dense_h_to_4h = nn.Linear(config.HiddenSize, config.IntermediateSize);
        dense_4h_to_h = nn.Linear(config.IntermediateSize, config.HiddenSize);
        _activation = Activations.Get(config.HiddenAct);
        RegisterComponents();
    }

    /// <inheritdoc />
    public override Tensor forward(Tensor hidden)
    {
        using var scope = torch.NewDisposeScope();
        return dense_4h_to_h.call(_activation(dense_h_to_4h.call(hidden))).MoveToOuterDisposeScope();
    }
}
