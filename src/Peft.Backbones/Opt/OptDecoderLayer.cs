// OPT attention and decoder layer, following transformers' models/opt/modeling_opt.py (eager attention; scaled_dot_product_attention computes the same, see FusedAttention).
using Peft.Modeling;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Peft.Backbones.Opt;

/// <summary>Causal self-attention with separate query, key and value projections.</summary>
[TargetModules("k_proj", "v_proj", "q_proj", "out_proj")]
public sealed partial class OptAttention : nn.Module
{
    private nn.Module<Tensor, Tensor> k_proj;
    private nn.Module<Tensor, Tensor> v_proj;
    private nn.Module<Tensor, Tensor> q_proj;
    private nn.Module<Tensor, Tensor> out_proj;

    private readonly int _heads;
    private readonly int _headDim;
    private readonly double _scaling;
    private readonly double _dropout;
    private readonly AttentionImplementation _attention;

    /// <summary>An attention layer sized by the config.</summary>
    public OptAttention(OptConfig config) : base("OPTAttention")
    {
        var size = config.HiddenSize;
        k_proj = nn.Linear(size, size, hasBias: config.EnableBias);
        v_proj = nn.Linear(size, size, hasBias: config.EnableBias);
        q_proj = nn.Linear(size, size, hasBias: config.EnableBias);
        out_proj = nn.Linear(size, size, hasBias: config.EnableBias);
        _heads = config.NumAttentionHeads;
        _headDim = config.HeadDim;
        _scaling = Math.Pow(_headDim, -0.5);
        _dropout = config.AttentionDropout;
        _attention = config.AttnImplementation;
        RegisterComponents();
    }

    /// <summary>Runs attention over <paramref name="hidden"/> (B, T, C) with an additive mask (B, 1, T, P + T).</summary>
    /// <param name="hidden">Input states.</param>
    /// <param name="mask">Additive causal and padding mask.</param>
    /// <param name="cache">Earlier keys/values (generation cache or prefixes); this step's are appended.</param>
    /// <param name="layerIndex">This layer's index in the cache.</param>
    public Tensor forward(Tensor hidden, Tensor mask, KeyValueCache? cache, int layerIndex)
    {
        using var scope = torch.NewDisposeScope();
        var (batch, length) = (hidden.shape[0], hidden.shape[1]);
        var projected = SplitHeads(q_proj.call(hidden), batch, length);          // (B, H, T, D)
        var key = SplitHeads(k_proj.call(hidden), batch, length);
        var value = SplitHeads(v_proj.call(hidden), batch, length);
        if (cache is not null)
        {
            (key, value) = cache.Append(layerIndex, key, value);                 // (B, H, P + T, D)
        }
        var output = (FusedAttention.Use(_attention, projected)
                ? FusedAttention.Compute(projected, key, value, mask, _scaling, _dropout, training)
                : Eager(projected, key, value, mask))                            // (B, H, T, D)
            .transpose(1, 2).reshape(batch, length, _heads * _headDim);
        return out_proj.call(output).MoveToOuterDisposeScope();
    }

    // (B, H, T, D): the reference's eager_attention_forward, which scales the query before the product (kept for its rounding).
    private Tensor Eager(Tensor query, Tensor key, Tensor value, Tensor mask)
    {
        var scores = torch.matmul(query * _scaling, key.transpose(-1, -2)) + mask;
        var probabilities = nn.functional.softmax(scores, dim: -1, dtype: ScalarType.Float32).to(query.dtype);
        probabilities = nn.functional.dropout(probabilities, _dropout, training);
        return torch.matmul(probabilities, value);
    }

    private Tensor SplitHeads(Tensor x, long batch, long length) => x.view(batch, length, _heads, _headDim).transpose(1, 2);
}

/// <summary>One decoder layer: attention and feed-forward (fc1, activation, fc2), pre- or post-norm.</summary>
[TargetModules("fc1", "fc2", "self_attn_layer_norm", "final_layer_norm")]
public sealed partial class OptDecoderLayer : nn.Module
{
    private readonly OptAttention self_attn;
    private nn.Module<Tensor, Tensor> self_attn_layer_norm;
    private nn.Module<Tensor, Tensor> fc1;
    private nn.Module<Tensor, Tensor> fc2;
    private nn.Module<Tensor, Tensor> final_layer_norm;

    private readonly bool _normBefore;
    private readonly double _dropout;
    private readonly Func<Tensor, Tensor> _activation;

    /// <summary>A layer sized by the config.</summary>
    public OptDecoderLayer(OptConfig config) : base("OPTDecoderLayer")
    {
        self_attn = new OptAttention(config);
        self_attn_layer_norm = nn.LayerNorm(config.HiddenSize, elementwise_affine: config.LayerNormElementwiseAffine);
        fc1 = nn.Linear(config.HiddenSize, config.FfnDim, hasBias: config.EnableBias);
        fc2 = nn.Linear(config.FfnDim, config.HiddenSize, hasBias: config.EnableBias);
        final_layer_norm = nn.LayerNorm(config.HiddenSize, elementwise_affine: config.LayerNormElementwiseAffine);
        _normBefore = config.DoLayerNormBefore;
        _dropout = config.Dropout;
        _activation = Activations.Get(config.ActivationFunction);
        RegisterComponents();
    }

    /// <summary>(B, T, C) → (B, T, C).</summary>
    public Tensor forward(Tensor hidden, Tensor mask, KeyValueCache? cache, int layerIndex)
    {
        using var scope = torch.NewDisposeScope();
        var residual = hidden;
        if (_normBefore) hidden = self_attn_layer_norm.call(hidden);
        hidden = self_attn.forward(hidden, mask, cache, layerIndex);
        hidden = residual + nn.functional.dropout(hidden, _dropout, training);
        if (!_normBefore) hidden = self_attn_layer_norm.call(hidden);

        residual = hidden;
        if (_normBefore) hidden = final_layer_norm.call(hidden);
        hidden = fc2.call(_activation(fc1.call(hidden)));
        hidden = residual + nn.functional.dropout(hidden, _dropout, training);
        if (!_normBefore) hidden = final_layer_norm.call(hidden);
        return hidden.MoveToOuterDisposeScope();
    }
}
