// BART attention and layers, following transformers' models/bart/modeling_bart.py (eager attention, post-norm layers; scaled_dot_product_attention computes the same, see FusedAttention).
using Peft.Modeling;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Peft.Backbones.Bart;

/// <summary>Multi-head attention with biased projections and scores scaled by head_dim^-0.5.</summary>
[TargetModules("k_proj", "v_proj", "q_proj", "out_proj")]
public sealed partial class BartAttention : nn.Module
{
    private nn.Module<Tensor, Tensor> k_proj;
    private nn.Module<Tensor, Tensor> v_proj;
    private nn.Module<Tensor, Tensor> q_proj;
    private nn.Module<Tensor, Tensor> out_proj;
    private readonly Dropout dropout;

    private readonly int _heads;
    private readonly int _headDim;
    private readonly double _scaling;
    private readonly AttentionImplementation _attention;

    /// <summary>Attention over <paramref name="embedDim"/> channels in <paramref name="heads"/> heads, computed as <paramref name="implementation"/> asks.</summary>
    public BartAttention(int embedDim, int heads, double dropoutRate, AttentionImplementation implementation) : base(nameof(BartAttention))
    {
        _attention = implementation;
        if (embedDim % heads != 0) throw new ArgumentException($"d_model ({embedDim}) must be divisible by the number of heads ({heads}).");
        _heads = heads;
        _headDim = embedDim / heads;
        _scaling = Math.Pow(_headDim, -0.5);
        k_proj = nn.Linear(embedDim, embedDim);
        v_proj = nn.Linear(embedDim, embedDim);
        q_proj = nn.Linear(embedDim, embedDim);
        out_proj = nn.Linear(embedDim, embedDim);
        dropout = nn.Dropout(dropoutRate);
        RegisterComponents();
    }

    /// <summary>Self-attention (<paramref name="keyValueStates"/> null) or cross-attention over the encoder output.</summary>
    /// <param name="hidden">Queries' input, (B, T, C).</param>
    /// <param name="mask">Additive mask (B, 1, T or 1, K), or null.</param>
    /// <param name="keyValueStates">Encoder output for cross-attention, (B, S, C), or null.</param>
    /// <param name="cache">
    /// Self-attention: earlier keys/values (generation cache or prefixes), this step's are appended.
    /// Cross-attention: the projected encoder keys/values, filled on first use and then reused.
    /// </param>
    /// <param name="layerIndex">This layer's index in <paramref name="cache"/>.</param>
    public Tensor forward(Tensor hidden, Tensor? mask, Tensor? keyValueStates, KeyValueCache? cache, int layerIndex)
    {
        using var scope = torch.NewDisposeScope();
        var (batch, length) = (hidden.shape[0], hidden.shape[1]);
        var query = SplitHeads(q_proj.call(hidden), batch);                         // (B, H, T, D)
        Tensor key, value;
        if (keyValueStates is null)
        {
            key = SplitHeads(k_proj.call(hidden), batch);
            value = SplitHeads(v_proj.call(hidden), batch);
            if (cache is not null) (key, value) = cache.Append(layerIndex, key, value);   // (B, H, P + T, D)
        }
        else if (cache?[layerIndex] is { } cross)
        {
            (key, value) = cross;
        }
        else
        {
            key = SplitHeads(k_proj.call(keyValueStates), batch);                  // (B, H, S, D)
            value = SplitHeads(v_proj.call(keyValueStates), batch);
            if (cache is not null) (key, value) = cache.Append(layerIndex, key, value);
        }

        var visible = mask?[.., .., .., ..(int)key.shape[2]];
        var output = (FusedAttention.Use(_attention, query)
                ? FusedAttention.Compute(query, key, value, visible, _scaling, dropout.p, training)
                : Eager(query, key, value, visible))                                  // (B, H, T, D)
            .transpose(1, 2).reshape(batch, length, _heads * _headDim);
        return out_proj.call(output).MoveToOuterDisposeScope();
    }

    // (B, H, T, D): the reference's eager_attention_forward.
    private Tensor Eager(Tensor query, Tensor key, Tensor value, Tensor? mask)
    {
        var scores = torch.matmul(query, key.transpose(2, 3)) * _scaling;
        if (mask is not null) scores = scores + mask;
        var weights = dropout.call(nn.functional.softmax(scores, dim: -1));
        return torch.matmul(weights, value);
    }

    private Tensor SplitHeads(Tensor x, long batch) => x.view(batch, -1, _heads, _headDim).transpose(1, 2);
}

/// <summary>Post-norm encoder layer: self-attention, then fc1 → activation → fc2, each with residual and layer norm.</summary>
[TargetModules("fc1", "fc2", "self_attn_layer_norm", "final_layer_norm")]
public sealed partial class BartEncoderLayer : nn.Module
{
    private readonly BartAttention self_attn;
    private nn.Module<Tensor, Tensor> self_attn_layer_norm;
    private nn.Module<Tensor, Tensor> fc1;
    private nn.Module<Tensor, Tensor> fc2;
    private nn.Module<Tensor, Tensor> final_layer_norm;
    private readonly Dropout dropout;
    private readonly Dropout activation_dropout;
    private readonly Func<Tensor, Tensor> _activation;

    /// <summary>An encoder layer of the config's sizes.</summary>
    public BartEncoderLayer(BartConfig config) : base(nameof(BartEncoderLayer))
    {
        self_attn = new BartAttention(config.DModel, config.EncoderAttentionHeads, config.AttentionDropout, config.AttnImplementation);
        self_attn_layer_norm = nn.LayerNorm(config.DModel);
        fc1 = nn.Linear(config.DModel, config.EncoderFfnDim);
        fc2 = nn.Linear(config.EncoderFfnDim, config.DModel);
        final_layer_norm = nn.LayerNorm(config.DModel);
        dropout = nn.Dropout(config.Dropout);
        activation_dropout = nn.Dropout(config.ActivationDropout);
        _activation = Activations.Get(config.ActivationFunction);
        RegisterComponents();
    }

    /// <summary>(B, S, C) with an additive padding mask → (B, S, C).</summary>
    public Tensor forward(Tensor hidden, Tensor? mask)
    {
        using var scope = torch.NewDisposeScope();
        hidden = self_attn_layer_norm.call(hidden + dropout.call(self_attn.forward(hidden, mask, null, null, 0)));
        var fed = dropout.call(fc2.call(activation_dropout.call(_activation(fc1.call(hidden)))));
        return final_layer_norm.call(hidden + fed).MoveToOuterDisposeScope();
    }
}

/// <summary>Post-norm decoder layer: causal self-attention, cross-attention, feed-forward, each with residual and layer norm.</summary>
[TargetModules("fc1", "fc2", "self_attn_layer_norm", "encoder_attn_layer_norm", "final_layer_norm")]
public sealed partial class BartDecoderLayer : nn.Module
{
    private readonly BartAttention self_attn;
    private nn.Module<Tensor, Tensor> self_attn_layer_norm;
    private readonly BartAttention encoder_attn;
    private nn.Module<Tensor, Tensor> encoder_attn_layer_norm;
    private nn.Module<Tensor, Tensor> fc1;
    private nn.Module<Tensor, Tensor> fc2;
    private nn.Module<Tensor, Tensor> final_layer_norm;
    private readonly Dropout dropout;
    private readonly Dropout activation_dropout;
    private readonly Func<Tensor, Tensor> _activation;

    /// <summary>A decoder layer of the config's sizes.</summary>
    public BartDecoderLayer(BartConfig config) : base(nameof(BartDecoderLayer))
    {
        self_attn = new BartAttention(config.DModel, config.DecoderAttentionHeads, config.AttentionDropout, config.AttnImplementation);
        self_attn_layer_norm = nn.LayerNorm(config.DModel);
        encoder_attn = new BartAttention(config.DModel, config.DecoderAttentionHeads, config.AttentionDropout, config.AttnImplementation);
        encoder_attn_layer_norm = nn.LayerNorm(config.DModel);
        fc1 = nn.Linear(config.DModel, config.DecoderFfnDim);
        fc2 = nn.Linear(config.DecoderFfnDim, config.DModel);
        final_layer_norm = nn.LayerNorm(config.DModel);
        dropout = nn.Dropout(config.Dropout);
        activation_dropout = nn.Dropout(config.ActivationDropout);
        _activation = Activations.Get(config.ActivationFunction);
        RegisterComponents();
    }

    /// <summary>Runs the layer on (B, T, C).</summary>
    /// <param name="hidden">Decoder states.</param>
    /// <param name="mask">Additive causal and padding mask (B, 1, T, P + T).</param>
    /// <param name="encoderHidden">Encoder output (B, S, C).</param>
    /// <param name="encoderMask">Additive encoder padding mask, or null.</param>
    /// <param name="cache">Self-attention cache or prefixes.</param>
    /// <param name="crossCache">Projected encoder keys/values.</param>
    /// <param name="layerIndex">This layer's index.</param>
    public Tensor forward(Tensor hidden, Tensor mask, Tensor encoderHidden, Tensor? encoderMask, KeyValueCache? cache, KeyValueCache? crossCache, int layerIndex)
    {
        using var scope = torch.NewDisposeScope();
        hidden = self_attn_layer_norm.call(hidden + dropout.call(self_attn.forward(hidden, mask, null, cache, layerIndex)));
        hidden = encoder_attn_layer_norm.call(hidden + dropout.call(encoder_attn.forward(hidden, encoderMask, encoderHidden, crossCache, layerIndex)));
        var fed = dropout.call(fc2.call(activation_dropout.call(_activation(fc1.call(hidden)))));
        return final_layer_norm.call(hidden + fed).MoveToOuterDisposeScope();
    }
}
