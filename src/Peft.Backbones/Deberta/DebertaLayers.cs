// DeBERTa (v1) layers, following transformers' models/deberta/modeling_deberta.py (eager attention).
using Peft.Modeling;
using TorchSharp;
using TorchSharp.Modules;
using TorchSharp.Utils;
using static TorchSharp.torch;

namespace Peft.Backbones.Deberta;

/// <summary>DeBERTa's layer norm ("TF style": epsilon inside the square root, computed in float32).</summary>
public sealed class DebertaLayerNorm : nn.Module<Tensor, Tensor>, Layers.INormLayer
{
    /// <summary>Scale, initialised to ones.</summary>
    public Parameter weight;

    /// <summary>Shift, initialised to zeros.</summary>
    public Parameter bias;

    private readonly double _epsilon;

    /// <summary>A layer norm over the last dimension, of size <paramref name="size"/>.</summary>
    public DebertaLayerNorm(long size, double epsilon) : base("DebertaLayerNorm")
    {
        weight = new Parameter(torch.ones(size));
        bias = new Parameter(torch.zeros(size));
        _epsilon = epsilon;
        RegisterComponents();
    }

    /// <inheritdoc />
    public long Features => weight.shape[0];

    /// <inheritdoc />
    public nn.Module<Tensor, Tensor> CreateLike() => new DebertaLayerNorm(Features, _epsilon);

    /// <inheritdoc />
    public override Tensor forward(Tensor input)
    {
        using var scope = torch.NewDisposeScope();
        var x = input.to(ScalarType.Float32);
        var mean = x.mean([-1], keepdim: true);
        var centered = x - mean;
        var variance = centered.pow(2).mean([-1], keepdim: true);
        var normalized = (centered / torch.sqrt(variance + _epsilon)).to(input.dtype);
        return (weight * normalized + bias).MoveToOuterDisposeScope();
    }
}

/// <summary>
/// Disentangled self-attention of DeBERTa v1: a fused, head-interleaved <c>in_proj</c> (no bias) with
/// separate <c>q_bias</c>/<c>v_bias</c>, scores scaled by 1/√(d·(1 + |pos_att_type|)), plus
/// content-to-position (<c>pos_proj</c>) and position-to-content (<c>pos_q_proj</c>) terms over
/// relative positions when <c>relative_attention</c> is on.
/// </summary>
[TargetModules]
public sealed partial class DisentangledSelfAttention : nn.Module
{
    private nn.Module<Tensor, Tensor> in_proj;
    private readonly Parameter q_bias;
    private readonly Parameter v_bias;
    private nn.Module<Tensor, Tensor>? head_logits_proj;
    private nn.Module<Tensor, Tensor>? head_weights_proj;
    private readonly Dropout? pos_dropout;
    private nn.Module<Tensor, Tensor>? pos_proj;
    private nn.Module<Tensor, Tensor>? pos_q_proj;
    private readonly Dropout dropout;

    private readonly int _heads;
    private readonly int _headDim;
    private readonly bool _c2p;
    private readonly bool _p2c;
    private readonly int _scaleFactor;
    private readonly int _maxRelativePositions;
    private readonly bool _relative;

    /// <summary>Attention sized by the config.</summary>
    public DisentangledSelfAttention(DebertaConfig config) : base(nameof(DisentangledSelfAttention))
    {
        RefuseSdpa(config);
        if (config.HiddenSize % config.NumAttentionHeads != 0)
        {
            throw new ArgumentException($"hidden_size ({config.HiddenSize}) is not a multiple of num_attention_heads ({config.NumAttentionHeads}).");
        }
        _heads = config.NumAttentionHeads;
        _headDim = config.HiddenSize / _heads;
        var all = _heads * _headDim;
        in_proj = nn.Linear(config.HiddenSize, 3 * all, hasBias: false);
        q_bias = new Parameter(torch.zeros(all));
        v_bias = new Parameter(torch.zeros(all));
        _c2p = config.HasPosAtt("c2p");
        _p2c = config.HasPosAtt("p2c");
        _scaleFactor = 1 + config.PosAttType.Count;
        _relative = config.RelativeAttention;
        if (config.TalkingHead)
        {
            head_logits_proj = nn.Linear(_heads, _heads, hasBias: false);
            head_weights_proj = nn.Linear(_heads, _heads, hasBias: false);
        }
        if (_relative)
        {
            _maxRelativePositions = config.MaxRelativePositions;
            pos_dropout = nn.Dropout(config.HiddenDropoutProb);
            if (_c2p) pos_proj = nn.Linear(config.HiddenSize, all, hasBias: false);
            if (_p2c) pos_q_proj = nn.Linear(config.HiddenSize, all);
        }
        dropout = nn.Dropout(config.AttentionProbsDropoutProb);
        RegisterComponents();
    }

    /// <summary>
    /// DeBERTa (v1 and v2) keeps the explicit attention (docs/PERFORMANCE.md says why), so asking for the fused kernel
    /// is refused, as transformers refuses <c>attn_implementation="sdpa"</c> for it; Auto computes it explicitly.
    /// </summary>
    internal static void RefuseSdpa(DebertaConfig config)
    {
        if (config.AttnImplementation == AttentionImplementation.Sdpa)
        {
            throw new NotSupportedException($"AttnImplementation {AttentionImplementation.Sdpa}: {config.ModelType} computes its disentangled attention explicitly only; use {AttentionImplementation.Auto} or {AttentionImplementation.Eager}.");
        }
    }

    /// <summary>
    /// Attends over <paramref name="hidden"/> (B, T, C) with the boolean mask (B, 1, T, T);
    /// <paramref name="relativePositions"/> (1, T, T) and <paramref name="relEmbeddings"/> (2k, C)
    /// are used when relative attention is on.
    /// </summary>
    public Tensor forward(Tensor hidden, Tensor mask, Tensor? relativePositions, Tensor? relEmbeddings)
    {
        using var scope = torch.NewDisposeScope();
        var (batch, length) = (hidden.shape[0], hidden.shape[1]);
        var qkv = SplitHeads(in_proj.call(hidden)).chunk(3, dim: -1);               // 3 × (B, H, T, D)
        var query = qkv[0] + SplitHeads(q_bias.view(1, 1, -1));
        var key = qkv[1];
        var value = qkv[2] + SplitHeads(v_bias.view(1, 1, -1));

        query = query / (float)Math.Sqrt((float)_headDim * _scaleFactor);
        var scores = torch.matmul(query, key.transpose(-1, -2));                     // (B, H, T, T)
        if (_relative && relativePositions is not null && relEmbeddings is not null)
        {
            scores = scores + DisentangledBias(query, key, relativePositions, pos_dropout!.call(relEmbeddings));
        }
        if (head_logits_proj is not null) scores = head_logits_proj.call(scores.permute(0, 2, 3, 1)).permute(0, 3, 1, 2);

        scores = scores.masked_fill(mask.logical_not(), torch.finfo(query.dtype).min);
        var probabilities = dropout.call(nn.functional.softmax(scores, dim: -1));
        if (head_weights_proj is not null) probabilities = head_weights_proj.call(probabilities.permute(0, 2, 3, 1)).permute(0, 3, 1, 2);

        var context = torch.matmul(probabilities, value)                             // (B, H, T, D)
            .permute(0, 2, 1, 3).reshape(batch, length, _heads * _headDim);
        return context.MoveToOuterDisposeScope();
    }

    /// <summary>The content-to-position and position-to-content scores (B, H, T, T); queries and keys are the same positions.</summary>
    private Tensor DisentangledBias(Tensor query, Tensor key, Tensor relativePositions, Tensor relEmbeddings)
    {
        var (queryLength, keyLength) = (query.shape[2], key.shape[2]);
        var span = Math.Min(Math.Max(queryLength, keyLength), _maxRelativePositions);
        var relative = relativePositions.to(ScalarType.Int64).unsqueeze(1);          // (1, 1, Q, K)
        var embeddings = relEmbeddings.narrow(0, _maxRelativePositions - span, 2 * span).unsqueeze(0);   // (1, 2k, C)
        Tensor score = torch.zeros(1, dtype: query.dtype, device: query.device);

        if (_c2p)
        {
            var posKey = SplitHeads(pos_proj!.call(embeddings));                     // (1, H, 2k, D)
            var c2p = torch.matmul(query, posKey.transpose(-1, -2));                 // (B, H, Q, 2k)
            var index = torch.clamp(relative + span, 0, span * 2 - 1)
                .expand(query.shape[0], query.shape[1], queryLength, relative.shape[^1]);
            score = score + torch.gather(c2p, -1, index);
        }
        if (_p2c)
        {
            var posQuery = SplitHeads(pos_q_proj!.call(embeddings));                 // (1, H, 2k, D)
            posQuery = posQuery / (float)Math.Sqrt((float)_headDim * _scaleFactor);
            var index = torch.clamp(-relative + span, 0, span * 2 - 1)
                .expand(query.shape[0], query.shape[1], keyLength, keyLength);
            var p2c = torch.matmul(key, posQuery.transpose(-1, -2).to(key.dtype));   // (B, H, K, 2k)
            p2c = torch.gather(p2c, -1, index).transpose(-1, -2);
            score = score + p2c;
        }
        return score;
    }

    /// <summary>(B, T, H·X) → (B, H, T, X).</summary>
    private Tensor SplitHeads(Tensor x) => x.view([.. x.shape[..^1], _heads, -1]).permute(0, 2, 1, 3);
}

/// <summary>Attention output: dense, dropout, residual layer norm.</summary>
[TargetModules("dense", "LayerNorm")]
public sealed partial class DebertaSelfOutput : nn.Module
{
    private nn.Module<Tensor, Tensor> dense;
    [ComponentName(Name = "LayerNorm")] private nn.Module<Tensor, Tensor> layer_norm;
    private readonly Dropout dropout;

    /// <summary>Sized by the config, normalising with <paramref name="layerNorm"/> (DeBERTa's or torch's).</summary>
    public DebertaSelfOutput(DebertaConfig config, nn.Module<Tensor, Tensor> layerNorm) : base(nameof(DebertaSelfOutput))
    {
        dense = nn.Linear(config.HiddenSize, config.HiddenSize);
        layer_norm = layerNorm;
        dropout = nn.Dropout(config.HiddenDropoutProb);
        RegisterComponents();
    }

    /// <summary>LayerNorm(dropout(dense(<paramref name="hidden"/>)) + <paramref name="input"/>).</summary>
    public Tensor forward(Tensor hidden, Tensor input)
    {
        using var scope = torch.NewDisposeScope();
        return layer_norm.call(dropout.call(dense.call(hidden)) + input).MoveToOuterDisposeScope();
    }
}

/// <summary>Self-attention and its output block.</summary>
public sealed class DebertaAttention : nn.Module
{
#pragma warning disable IDE1006 // Hugging Face's module name
    private readonly DisentangledSelfAttention self;
#pragma warning restore IDE1006
    private readonly DebertaSelfOutput output;

    /// <summary>Sized by the config.</summary>
    public DebertaAttention(DebertaConfig config) : base(nameof(DebertaAttention))
    {
        self = new DisentangledSelfAttention(config);
        output = new DebertaSelfOutput(config, new DebertaLayerNorm(config.HiddenSize, config.LayerNormEps));
        RegisterComponents();
    }

    /// <summary>(B, T, C) → (B, T, C).</summary>
    public Tensor forward(Tensor hidden, Tensor mask, Tensor? relativePositions, Tensor? relEmbeddings)
    {
        using var scope = torch.NewDisposeScope();
        return output.forward(self.forward(hidden, mask, relativePositions, relEmbeddings), hidden).MoveToOuterDisposeScope();
    }
}

/// <summary>Feed-forward up-projection and activation.</summary>
[TargetModules("dense")]
public sealed partial class DebertaIntermediate : nn.Module<Tensor, Tensor>
{
    private nn.Module<Tensor, Tensor> dense;
    private readonly Func<Tensor, Tensor> _activation;

    /// <summary>Sized by the config.</summary>
    public DebertaIntermediate(DebertaConfig config) : base(nameof(DebertaIntermediate))
    {
        dense = nn.Linear(config.HiddenSize, config.IntermediateSize);
        _activation = Activations.Get(config.HiddenAct);
        RegisterComponents();
    }

    /// <inheritdoc />
    public override Tensor forward(Tensor hidden)
    {
        using var scope = torch.NewDisposeScope();
        return _activation(dense.call(hidden)).MoveToOuterDisposeScope();
    }
}

/// <summary>Feed-forward down-projection, dropout, residual layer norm.</summary>
[TargetModules("dense", "LayerNorm")]
public sealed partial class DebertaOutput : nn.Module
{
    private nn.Module<Tensor, Tensor> dense;
    [ComponentName(Name = "LayerNorm")] private nn.Module<Tensor, Tensor> layer_norm;
    private readonly Dropout dropout;

    /// <summary>Sized by the config, normalising with <paramref name="layerNorm"/> (DeBERTa's or torch's).</summary>
    public DebertaOutput(DebertaConfig config, nn.Module<Tensor, Tensor> layerNorm) : base(nameof(DebertaOutput))
    {
        dense = nn.Linear(config.IntermediateSize, config.HiddenSize);
        layer_norm = layerNorm;
        dropout = nn.Dropout(config.HiddenDropoutProb);
        RegisterComponents();
    }

    /// <summary>LayerNorm(dropout(dense(<paramref name="hidden"/>)) + <paramref name="input"/>).</summary>
    public Tensor forward(Tensor hidden, Tensor input)
    {
        using var scope = torch.NewDisposeScope();
        return layer_norm.call(dropout.call(dense.call(hidden)) + input).MoveToOuterDisposeScope();
    }
}

/// <summary>One post-norm encoder layer: attention, then the feed-forward block.</summary>
public sealed class DebertaLayer : nn.Module
{
    private readonly DebertaAttention attention;
    private readonly DebertaIntermediate intermediate;
    private readonly DebertaOutput output;

    /// <summary>Sized by the config.</summary>
    public DebertaLayer(DebertaConfig config) : base(nameof(DebertaLayer))
    {
        attention = new DebertaAttention(config);
        intermediate = new DebertaIntermediate(config);
        output = new DebertaOutput(config, new DebertaLayerNorm(config.HiddenSize, config.LayerNormEps));
        RegisterComponents();
    }

    /// <summary>(B, T, C) → (B, T, C).</summary>
    public Tensor forward(Tensor hidden, Tensor mask, Tensor? relativePositions, Tensor? relEmbeddings)
    {
        using var scope = torch.NewDisposeScope();
        var attended = attention.forward(hidden, mask, relativePositions, relEmbeddings);
        return output.forward(intermediate.call(attended), attended).MoveToOuterDisposeScope();
    }
}
