// Llama attention, MLP and RMSNorm, following transformers' models/llama/modeling_llama.py (sdpa and eager attention).
using Peft.Backbones.Shared;
using Peft.Modeling;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Peft.Backbones.Llama;

/// <summary>Grouped-query self-attention with rotary positions: q/k/v/o projections, key/value heads shared by groups of query heads.</summary>
[TargetModules("q_proj", "k_proj", "v_proj", "o_proj")]
public sealed partial class LlamaAttention : nn.Module
{
    private nn.Module<Tensor, Tensor> q_proj;
    private nn.Module<Tensor, Tensor> k_proj;
    private nn.Module<Tensor, Tensor> v_proj;
    private nn.Module<Tensor, Tensor> o_proj;

    private readonly int _headDim;
    private readonly int _groups;
    private readonly double _scaling;
    private readonly double _dropout;
    private readonly AttentionImplementation _attention;

    /// <summary>An attention layer sized by the config.</summary>
    public LlamaAttention(LlamaConfig config) : base("LlamaAttention")
    {
        _headDim = config.HeadDim;
        _groups = config.NumAttentionHeads / config.NumKeyValueHeads;
        _scaling = Math.Pow(_headDim, -0.5);
        _dropout = config.AttentionDropout;
        _attention = config.AttnImplementation;
        q_proj = nn.Linear(config.HiddenSize, config.NumAttentionHeads * _headDim, hasBias: config.AttentionBias);
        k_proj = nn.Linear(config.HiddenSize, config.NumKeyValueHeads * _headDim, hasBias: config.AttentionBias);
        v_proj = nn.Linear(config.HiddenSize, config.NumKeyValueHeads * _headDim, hasBias: config.AttentionBias);
        o_proj = nn.Linear(config.NumAttentionHeads * _headDim, config.HiddenSize, hasBias: config.AttentionBias);
        RegisterComponents();
    }

    /// <summary>Runs attention over <paramref name="hidden"/> (B, T, C).</summary>
    /// <param name="hidden">Input states.</param>
    /// <param name="mask">Additive causal and padding mask, (B, 1, T, P + T).</param>
    /// <param name="cos">Rotary cosines for these positions, (B, T, rotary).</param>
    /// <param name="sin">Rotary sines, (B, T, rotary).</param>
    /// <param name="cache">Earlier keys/values (generation cache or prefixes), key/value heads; this step's are appended.</param>
    /// <param name="layerIndex">This layer's index in the cache.</param>
    public Tensor forward(Tensor hidden, Tensor mask, Tensor cos, Tensor sin, KeyValueCache? cache, int layerIndex)
    {
        using var scope = torch.NewDisposeScope();
        var (batch, length) = (hidden.shape[0], hidden.shape[1]);
        var query = SplitHeads(q_proj.call(hidden), batch, length);          // (B, H, T, D)
        var key = SplitHeads(k_proj.call(hidden), batch, length);            // (B, KV, T, D)
        var value = SplitHeads(v_proj.call(hidden), batch, length);
        query = RotaryEmbedding.Apply(query, cos, sin);
        key = RotaryEmbedding.Apply(key, cos, sin);
        if (cache is not null)
        {
            (key, value) = cache.Append(layerIndex, key, value);             // (B, KV, P + T, D)
        }
        key = RepeatKeyValue(key);                                           // (B, H, P + T, D)
        value = RepeatKeyValue(value);

        var output = (FusedAttention.Use(_attention, query) ? FusedAttention.Compute(query, key, value, mask, _scaling, _dropout, training) : Eager(query, key, value, mask))
            .transpose(1, 2).reshape(batch, length, -1);
        return o_proj.call(output).MoveToOuterDisposeScope();
    }

    // (B, H, T, D): the reference's eager_attention_forward, softmax in at least float32.
    private Tensor Eager(Tensor query, Tensor key, Tensor value, Tensor mask)
    {
        var scores = torch.matmul(query, key.transpose(2, 3)) * _scaling + mask;
        var probabilities = nn.functional.softmax(scores, dim: -1, dtype: Precision.AtLeastFloat32(scores.dtype)).to(query.dtype);
        probabilities = nn.functional.dropout(probabilities, _dropout, training);
        return torch.matmul(probabilities, value);
    }

    private Tensor SplitHeads(Tensor x, long batch, long length) => x.view(batch, length, -1, _headDim).transpose(1, 2);

    /// <summary>(B, KV, S, D) → (B, KV × groups, S, D): each key/value head serves <c>groups</c> consecutive query heads.</summary>
    private Tensor RepeatKeyValue(Tensor x)
    {
        if (_groups == 1) return x;
        var (batch, heads, length, dim) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3]);
        return x.unsqueeze(2).expand(batch, heads, _groups, length, dim).reshape(batch, heads * _groups, length, dim);
    }
}

/// <summary>The gated feed-forward block: down_proj(act(gate_proj(x)) · up_proj(x)).</summary>
[TargetModules("gate_proj", "up_proj", "down_proj")]
public sealed partial class LlamaMlp : nn.Module<Tensor, Tensor>
{
    private nn.Module<Tensor, Tensor> gate_proj;
    private nn.Module<Tensor, Tensor> up_proj;
    private nn.Module<Tensor, Tensor> down_proj;
    private readonly Func<Tensor, Tensor> _activation;

    /// <summary>An MLP sized by the config.</summary>
    public LlamaMlp(LlamaConfig config) : base("LlamaMLP")
    {
        gate_proj = nn.Linear(config.HiddenSize, config.IntermediateSize, hasBias: config.MlpBias);
        up_proj = nn.Linear(config.HiddenSize, config.IntermediateSize, hasBias: config.MlpBias);
        down_proj = nn.Linear(config.IntermediateSize, config.HiddenSize, hasBias: config.MlpBias);
        _activation = Activations.Get(config.HiddenAct);
        RegisterComponents();
    }

    /// <inheritdoc />
    public override Tensor forward(Tensor hidden)
    {
        using var scope = torch.NewDisposeScope();
        return down_proj.call(_activation(gate_proj.call(hidden)) * up_proj.call(hidden)).MoveToOuterDisposeScope();
    }
}

/// <summary>Root-mean-square layer norm, computed in at least float32 and scaled by <c>weight</c> (no bias, no centring).</summary>
public sealed class LlamaRmsNorm : nn.Module<Tensor, Tensor>, Tuners.ICloneableModule, Layers.INormLayer
{
#pragma warning disable IDE1006 // Hugging Face's parameter name
    private readonly Parameter weight;
#pragma warning restore IDE1006
    private readonly double _eps;

    /// <summary>A norm over <paramref name="size"/> features.</summary>
    public LlamaRmsNorm(long size, double eps) : base("LlamaRMSNorm")
    {
        weight = new Parameter(torch.ones(size));
        _eps = eps;
        RegisterComponents();
    }

    /// <summary>A copy with its own weight (for modules_to_save).</summary>
    public nn.Module<Tensor, Tensor> Clone()
    {
        var copy = new LlamaRmsNorm(weight.shape[0], _eps);
        using (torch.no_grad()) copy.weight.copy_(weight);
        return copy.to(weight.device).to(weight.dtype);
    }

    /// <inheritdoc />
    public long Features => weight.shape[0];

    /// <inheritdoc />
    public nn.Module<Tensor, Tensor> CreateLike() => new LlamaRmsNorm(Features, _eps);

    /// <inheritdoc />
    public override Tensor forward(Tensor hidden)
    {
        using var scope = torch.NewDisposeScope();
        var dtype = hidden.dtype;
        var x = Precision.AtLeastFloat32(hidden);
        var variance = x.pow(2).mean([-1], keepdim: true);
        x = x * torch.rsqrt(variance + _eps);
        return (weight * x.to(dtype)).MoveToOuterDisposeScope();
    }
}
