// T5 and mT5 building blocks, following transformers' models/t5/modeling_t5.py (eager attention, or
// scaled_dot_product_attention with the position bias as its additive mask):
// RMS layer norm, attention with relative position buckets and no 1/sqrt(d) scaling, feed-forward blocks.
using Peft.Modeling;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Peft.Backbones.T5;

/// <summary>T5's layer norm: scales by the root mean square (variance in at least fp32), no mean subtraction, no bias.</summary>
public sealed class T5LayerNorm : nn.Module<Tensor, Tensor>, Layers.INormLayer
{
#pragma warning disable IDE1006 // Hugging Face's parameter name
    /// <summary>Per-channel scale, initialised to ones.</summary>
    public Parameter weight;
#pragma warning restore IDE1006

    private readonly double _epsilon;

    /// <summary>A norm over <paramref name="hiddenSize"/> channels.</summary>
    public T5LayerNorm(long hiddenSize, double epsilon) : base(nameof(T5LayerNorm))
    {
        weight = new Parameter(torch.ones(hiddenSize));
        _epsilon = epsilon;
        RegisterComponents();
    }

    /// <inheritdoc />
    public long Features => weight.shape[0];

    /// <inheritdoc />
    public nn.Module<Tensor, Tensor> CreateLike() => new T5LayerNorm(Features, _epsilon);

    /// <inheritdoc />
    public override Tensor forward(Tensor hidden)
    {
        using var scope = torch.NewDisposeScope();
        var variance = Precision.AtLeastFloat32(hidden).pow(2).mean([-1], keepdim: true);
        var normed = hidden * torch.rsqrt(variance + _epsilon);
        if (weight.dtype is ScalarType.Float16 or ScalarType.BFloat16) normed = normed.to(weight.dtype);
        return (weight * normed).MoveToOuterDisposeScope();
    }
}

/// <summary>
/// Multi-head attention without score scaling. Layer 0 of each stack owns <c>relative_attention_bias</c>;
/// the bias it computes (with the mask added) is handed on to the stack's other layers.
/// </summary>
[TargetModules("q", "k", "v", "o")]
public sealed partial class T5Attention : nn.Module
{
    private nn.Module<Tensor, Tensor> q;
    private nn.Module<Tensor, Tensor> k;
    private nn.Module<Tensor, Tensor> v;
    private nn.Module<Tensor, Tensor> o;
    private readonly Embedding? relative_attention_bias;
    private readonly Dropout dropout;

    private readonly bool _isDecoder;
    private readonly int _heads;
    private readonly int _headDim;
    private readonly int _numBuckets;
    private readonly int _maxDistance;
    private readonly AttentionImplementation _attention;

    /// <summary>An attention block of the config's sizes.</summary>
    /// <param name="config">The model config.</param>
    /// <param name="isDecoder">Decoder attention uses one-directional position buckets.</param>
    /// <param name="hasRelativeAttentionBias">True for the self-attention of each stack's first layer.</param>
    public T5Attention(T5Config config, bool isDecoder, bool hasRelativeAttentionBias) : base(nameof(T5Attention))
    {
        _isDecoder = isDecoder;
        _heads = config.NumHeads;
        _headDim = config.DKv;
        _numBuckets = config.RelativeAttentionNumBuckets;
        _maxDistance = config.RelativeAttentionMaxDistance;
        _attention = config.AttnImplementation;
        var inner = _heads * _headDim;
        q = nn.Linear(config.DModel, inner, hasBias: false);
        k = nn.Linear(config.DModel, inner, hasBias: false);
        v = nn.Linear(config.DModel, inner, hasBias: false);
        o = nn.Linear(inner, config.DModel, hasBias: false);
        if (hasRelativeAttentionBias) relative_attention_bias = Peft.Layers.Embeddings.Create(_numBuckets, _heads);
        dropout = nn.Dropout(config.DropoutRate);
        RegisterComponents();
    }

    /// <summary>
    /// Self-attention (<paramref name="keyValueStates"/> null) or cross-attention over the encoder output.
    /// </summary>
    /// <param name="hidden">Queries' input, (B, T, C).</param>
    /// <param name="mask">Additive mask (B, 1, T or 1, K), or null; added to the position bias when this layer computes it.</param>
    /// <param name="positionBias">The bias from the stack's first layer (mask included), or null to compute it here.</param>
    /// <param name="keyValueStates">Encoder output for cross-attention, (B, S, C), or null.</param>
    /// <param name="cache">
    /// Self-attention: earlier keys/values (generation cache or prefixes), this step's are appended.
    /// Cross-attention: the projected encoder keys/values, filled on first use and then reused.
    /// </param>
    /// <param name="layerIndex">This layer's index in <paramref name="cache"/>.</param>
    /// <returns>The output (B, T, C) and the position bias (with mask) the next layers reuse.</returns>
    public (Tensor Output, Tensor PositionBias) forward(Tensor hidden, Tensor? mask, Tensor? positionBias, Tensor? keyValueStates, KeyValueCache? cache, int layerIndex)
    {
        using var scope = torch.NewDisposeScope();
        var (batch, length) = (hidden.shape[0], hidden.shape[1]);
        var query = SplitHeads(q.call(hidden), batch);                              // (B, H, T, D)
        Tensor key, value;
        if (keyValueStates is null)
        {
            key = SplitHeads(k.call(hidden), batch);
            value = SplitHeads(v.call(hidden), batch);
            if (cache is not null) (key, value) = cache.Append(layerIndex, key, value);  // (B, H, P + T, D)
        }
        else if (cache?[layerIndex] is { } cross)
        {
            (key, value) = cross;                                                  // encoder keys/values of an earlier step
        }
        else
        {
            key = SplitHeads(k.call(keyValueStates), batch);                       // (B, H, S, D)
            value = SplitHeads(v.call(keyValueStates), batch);
            if (cache is not null) (key, value) = cache.Append(layerIndex, key, value);
        }

        var keyLength = key.shape[2];
        if (positionBias is null)
        {
            positionBias = relative_attention_bias is null
                ? torch.zeros(1, _heads, length, keyLength, hidden.dtype, hidden.device)
                : ComputeBias(keyLength - length, length, keyLength, hidden.device);   // queries follow the cached positions
            if (mask is not null) positionBias = positionBias + mask[.., .., .., ..(int)keyLength];
        }

        // No 1/sqrt(d): scale 1, folded into the query on the fused path; the bias (mask included) is its additive mask.
        var output = (FusedAttention.Use(_attention, query)
                ? FusedAttention.Compute(query, key, value, positionBias, 1.0, dropout.p, training)
                : Eager(query, key, value, positionBias))                          // (B, H, T, D)
            .transpose(1, 2).reshape(batch, length, _heads * _headDim);
        return (o.call(output).MoveToOuterDisposeScope(), positionBias.MoveToOuterDisposeScope());
    }

    // (B, H, T, D): the reference's explicit scores, softmax in at least float32.
    private Tensor Eager(Tensor query, Tensor key, Tensor value, Tensor positionBias)
    {
        var scores = torch.matmul(query, key.transpose(3, 2)) + positionBias;   // (B, H, T, K)
        var weights = dropout.call(nn.functional.softmax(Precision.AtLeastFloat32(scores), dim: -1).to(scores.dtype));
        return torch.matmul(weights, value);
    }

    /// <summary>Bias (1, H, T, K) for queries at positions past..past + T - 1 over keys 0..K - 1.</summary>
    private Tensor ComputeBias(long past, long queryLength, long keyLength, Device device)
    {
        using var scope = torch.NewDisposeScope();
        var context = torch.arange(past, past + queryLength, ScalarType.Int64, device).unsqueeze(1);   // (T, 1)
        var memory = torch.arange(keyLength, ScalarType.Int64, device).unsqueeze(0);                   // (1, K)
        var buckets = RelativePositionBucket(memory - context, bidirectional: !_isDecoder, _numBuckets, _maxDistance);
        var values = relative_attention_bias!.call(buckets);                                          // (T, K, H)
        return values.permute(2, 0, 1).unsqueeze(0).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Mesh TensorFlow's bucketing of <c>key − query</c>: half the buckets are exact small distances, the rest
    /// logarithmic up to <paramref name="maxDistance"/>. Bidirectional buckets split by sign; one-directional
    /// ones (decoder) treat keys after the query as distance 0.
    /// </summary>
    public static Tensor RelativePositionBucket(Tensor relativePosition, bool bidirectional, int numBuckets, int maxDistance)
    {
        using var scope = torch.NewDisposeScope();
        var buckets = torch.zeros_like(relativePosition);
        if (bidirectional)
        {
            numBuckets /= 2;
            buckets = buckets + relativePosition.gt(0).to(ScalarType.Int64) * numBuckets;
            relativePosition = relativePosition.abs();
        }
        else
        {
            relativePosition = -torch.minimum(relativePosition, torch.zeros_like(relativePosition));
        }
        var maxExact = numBuckets / 2;
        var isSmall = relativePosition.lt(maxExact);
        var ifLarge = maxExact + (torch.log(relativePosition.to(ScalarType.Float32) / maxExact)
            / Math.Log((double)maxDistance / maxExact)
            * (numBuckets - maxExact)).to(ScalarType.Int64);
        ifLarge = torch.minimum(ifLarge, torch.full_like(ifLarge, numBuckets - 1));
        return (buckets + torch.where(isSmall, relativePosition, ifLarge)).MoveToOuterDisposeScope();
    }

    private Tensor SplitHeads(Tensor x, long batch) => x.view(batch, -1, _heads, _headDim).transpose(1, 2);
}

/// <summary>wi → activation → wo (<c>T5DenseActDense</c>, <c>feed_forward_proj: "relu"</c>).</summary>
[TargetModules("wi", "wo")]
public sealed partial class T5DenseActDense : nn.Module<Tensor, Tensor>
{
    private nn.Module<Tensor, Tensor> wi;
    private nn.Module<Tensor, Tensor> wo;
    private readonly Dropout dropout;
    private readonly Func<Tensor, Tensor> _activation;

    /// <summary>A block of the config's sizes.</summary>
    public T5DenseActDense(T5Config config) : base(nameof(T5DenseActDense))
    {
        wi = nn.Linear(config.DModel, config.DFf, hasBias: false);
        wo = nn.Linear(config.DFf, config.DModel, hasBias: false);
        dropout = nn.Dropout(config.DropoutRate);
        _activation = Activations.Get(config.DenseActFn);
        RegisterComponents();
    }

    /// <inheritdoc />
    public override Tensor forward(Tensor hidden)
    {
        using var scope = torch.NewDisposeScope();
        return wo.call(dropout.call(_activation(wi.call(hidden)))).MoveToOuterDisposeScope();
    }
}

/// <summary>activation(wi_0) × wi_1 → wo (<c>T5DenseGatedActDense</c>, <c>feed_forward_proj: "gated-gelu"</c> as in mT5).</summary>
[TargetModules("wi_0", "wi_1", "wo")]
public sealed partial class T5DenseGatedActDense : nn.Module<Tensor, Tensor>
{
    private nn.Module<Tensor, Tensor> wi_0;
    private nn.Module<Tensor, Tensor> wi_1;
    private nn.Module<Tensor, Tensor> wo;
    private readonly Dropout dropout;
    private readonly Func<Tensor, Tensor> _activation;

    /// <summary>A block of the config's sizes.</summary>
    public T5DenseGatedActDense(T5Config config) : base(nameof(T5DenseGatedActDense))
    {
        wi_0 = nn.Linear(config.DModel, config.DFf, hasBias: false);
        wi_1 = nn.Linear(config.DModel, config.DFf, hasBias: false);
        wo = nn.Linear(config.DFf, config.DModel, hasBias: false);
        dropout = nn.Dropout(config.DropoutRate);
        _activation = Activations.Get(config.DenseActFn);
        RegisterComponents();
    }

    /// <inheritdoc />
    public override Tensor forward(Tensor hidden)
    {
        using var scope = torch.NewDisposeScope();
        var gated = _activation(wi_0.call(hidden)) * wi_1.call(hidden);
        return wo.call(dropout.call(gated)).MoveToOuterDisposeScope();
    }
}
