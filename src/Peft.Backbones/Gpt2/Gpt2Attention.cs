// GPT-2 attention and MLP, following transformers' models/gpt2/modeling_gpt2.py (sdpa and eager attention).
using Peft.Layers;
using Peft.Modeling;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Peft.Backbones.Gpt2;

/// <summary>Causal self-attention with fused query/key/value projection (<c>c_attn</c>).</summary>
[TargetModules("c_attn", "c_proj")]
public sealed partial class Gpt2Attention : nn.Module
{
    private nn.Module<Tensor, Tensor> c_attn;
    private readonly Dropout attn_dropout;
    private nn.Module<Tensor, Tensor> c_proj;
    private readonly Dropout resid_dropout;

    private readonly int _heads;
    private readonly int _headDim;
    private readonly double _scale;
    private readonly AttentionImplementation _attention;

    /// <summary>Layer <paramref name="layerIndex"/>'s attention.</summary>
    public Gpt2Attention(Gpt2Config config, int layerIndex) : base("GPT2Attention")
    {
        c_attn = new Conv1D(config.NEmbd, 3 * config.NEmbd);
        attn_dropout = nn.Dropout(config.AttnPdrop);
        c_proj = new Conv1D(config.NEmbd, config.NEmbd);
        resid_dropout = nn.Dropout(config.ResidPdrop);
        _heads = config.NHead;
        _headDim = config.HeadDim;
        _scale = (config.ScaleAttnWeights ? 1.0 / Math.Sqrt(_headDim) : 1.0)
               / (config.ScaleAttnByInverseLayerIdx ? layerIndex + 1 : 1);
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
        var qkv = c_attn.call(hidden).split(hidden.shape[2], dim: 2);
        var query = SplitHeads(qkv[0], batch, length);                       // (B, H, T, D)
        var key = SplitHeads(qkv[1], batch, length);
        var value = SplitHeads(qkv[2], batch, length);
        if (cache is not null)
        {
            (key, value) = cache.Append(layerIndex, key, value);             // (B, H, P + T, D)
        }

        var output = (FusedAttention.Use(_attention, query) ? FusedAttention.Compute(query, key, value, mask, _scale, attn_dropout.p, training) : Eager(query, key, value, mask))
            .transpose(1, 2).reshape(batch, length, _heads * _headDim);
        return resid_dropout.call(c_proj.call(output)).MoveToOuterDisposeScope();
    }

    // (B, H, T, D): the reference's eager_attention_forward.
    private Tensor Eager(Tensor query, Tensor key, Tensor value, Tensor mask)
    {
        var scores = torch.matmul(query, key.transpose(-1, -2)) * _scale + mask;
        var probabilities = attn_dropout.call(nn.functional.softmax(scores, dim: -1).to(value.dtype));
        return torch.matmul(probabilities, value);
    }

    private Tensor SplitHeads(Tensor x, long batch, long length) => x.view(batch, length, _heads, _headDim).transpose(1, 2);
}

/// <summary>The feed-forward block: c_fc, activation, c_proj.</summary>
[TargetModules("c_fc", "c_proj")]
public sealed partial class Gpt2Mlp : nn.Module<Tensor, Tensor>
{
    private nn.Module<Tensor, Tensor> c_fc;
    private nn.Module<Tensor, Tensor> c_proj;
    private readonly Dropout dropout;
    private readonly Func<Tensor, Tensor> _activation;

    /// <summary>An MLP sized by the config.</summary>
    public Gpt2Mlp(Gpt2Config config) : base("GPT2MLP")
    {
        var inner = config.NInner ?? 4 * config.NEmbd;
        c_fc = new Conv1D(config.NEmbd, inner);
        c_proj = new Conv1D(inner, config.NEmbd);
        dropout = nn.Dropout(config.ResidPdrop);
        _activation = Activations.Get(config.ActivationFunction);
        RegisterComponents();
    }

    /// <inheritdoc />
    public override Tensor forward(Tensor hidden)
    {
        using var scope = torch.NewDisposeScope();
        return dropout.call(c_proj.call(_activation(c_fc.call(hidden)))).MoveToOuterDisposeScope();
    }
}
