// DeBERTa-v2 layers, following transformers' models/deberta_v2/modeling_deberta_v2.py (eager attention).
// Copied from Deberta/DebertaLayers.cs where the math is the same (the disentangled attention's position
// terms, the output blocks), as transformers marks with "# Copied from"; v2's own parts: separate q/k/v
// projections, log-bucketed relative positions, the optional ConvLayer.
using Peft.Backbones.Deberta;
using Peft.Modeling;
using TorchSharp;
using TorchSharp.Modules;
using TorchSharp.Utils;
using static TorchSharp.torch;

namespace Peft.Backbones.DebertaV2;

/// <summary>
/// Disentangled self-attention of DeBERTa-v2: separate <c>query_proj</c>/<c>key_proj</c>/<c>value_proj</c>;
/// content scores and each relative term divided by √(d·scale_factor), where scale_factor counts 1 plus
/// c2p and p2c; relative embeddings projected by the content projections (<c>share_att_key</c>) or by
/// <c>pos_key_proj</c>/<c>pos_query_proj</c>.
/// </summary>
[TargetModules]
public sealed partial class DisentangledSelfAttention : nn.Module
{
    private nn.Module<Tensor, Tensor> query_proj;
    private nn.Module<Tensor, Tensor> key_proj;
    private nn.Module<Tensor, Tensor> value_proj;
    private readonly Dropout? pos_dropout;
    private nn.Module<Tensor, Tensor>? pos_key_proj;
    private nn.Module<Tensor, Tensor>? pos_query_proj;
    private readonly Dropout dropout;

    private readonly int _heads;
    private readonly int _headDim;
    private readonly bool _c2p;
    private readonly bool _p2c;
    private readonly bool _shareAttKey;
    private readonly bool _relative;
    private readonly int _posEbdSize;
    private readonly float _scale;

    /// <summary>Attention sized by the config.</summary>
    public DisentangledSelfAttention(DebertaV2Config config) : base(nameof(DisentangledSelfAttention))
    {
        Deberta.DisentangledSelfAttention.RefuseSdpa(config);
        if (config.HiddenSize % config.NumAttentionHeads != 0)
        {
            throw new ArgumentException($"hidden_size ({config.HiddenSize}) is not a multiple of num_attention_heads ({config.NumAttentionHeads}).");
        }
        _heads = config.NumAttentionHeads;
        _headDim = config.HeadDim;
        var all = _heads * _headDim;
        query_proj = nn.Linear(config.HiddenSize, all);
        key_proj = nn.Linear(config.HiddenSize, all);
        value_proj = nn.Linear(config.HiddenSize, all);
        _shareAttKey = config.ShareAttKey;
        _c2p = config.HasPosAtt("c2p");
        _p2c = config.HasPosAtt("p2c");
        _relative = config.RelativeAttention;
        if (_relative)
        {
            _posEbdSize = config.PosEbdSize;
            pos_dropout = nn.Dropout(config.HiddenDropoutProb);
            if (!_shareAttKey)
            {
                if (_c2p) pos_key_proj = nn.Linear(config.HiddenSize, all);
                if (_p2c) pos_query_proj = nn.Linear(config.HiddenSize, all);
            }
        }
        dropout = nn.Dropout(config.AttentionProbsDropoutProb);
        var scaleFactor = 1 + (_c2p ? 1 : 0) + (_p2c ? 1 : 0);
        _scale = (float)Math.Sqrt((float)_headDim * scaleFactor);
        RegisterComponents();
    }

    /// <summary>
    /// Attends over <paramref name="hidden"/> (B, T, C) with the boolean mask (B, 1, T, T);
    /// <paramref name="relativePositions"/> (1, T, T) and <paramref name="relEmbeddings"/> (2·buckets, C)
    /// are used when relative attention is on.
    /// </summary>
    public Tensor forward(Tensor hidden, Tensor mask, Tensor? relativePositions, Tensor? relEmbeddings)
    {
        using var scope = torch.NewDisposeScope();
        var (batch, length) = (hidden.shape[0], hidden.shape[1]);
        var query = SplitHeads(query_proj.call(hidden));                             // (B, H, T, D)
        var key = SplitHeads(key_proj.call(hidden));
        var value = SplitHeads(value_proj.call(hidden));

        var scores = torch.matmul(query, key.transpose(-1, -2) / _scale);            // (B, H, T, T)
        if (_relative && relativePositions is not null && relEmbeddings is not null)
        {
            scores = scores + DisentangledBias(query, key, relativePositions, pos_dropout!.call(relEmbeddings));
        }
        scores = scores.masked_fill(mask.logical_not(), torch.finfo(query.dtype).min);
        var probabilities = dropout.call(nn.functional.softmax(scores, dim: -1));
        var context = torch.matmul(probabilities, value)                             // (B, H, T, D)
            .permute(0, 2, 1, 3).reshape(batch, length, _heads * _headDim);
        return context.MoveToOuterDisposeScope();
    }

    /// <summary>The content-to-position and position-to-content scores (B, H, T, T); queries and keys are the same positions.</summary>
    private Tensor DisentangledBias(Tensor query, Tensor key, Tensor relativePositions, Tensor relEmbeddings)
    {
        var (queryLength, keyLength) = (query.shape[2], key.shape[2]);
        var span = _posEbdSize;
        var relative = relativePositions.to(ScalarType.Int64).unsqueeze(1);          // (1, 1, Q, K)
        var embeddings = relEmbeddings.narrow(0, 0, span * 2).unsqueeze(0);            // (1, 2S, C)
        Tensor score = torch.zeros(1, dtype: query.dtype, device: query.device);

        if (_c2p)
        {
            var posKey = SplitHeads((_shareAttKey ? key_proj : pos_key_proj!).call(embeddings));      // (1, H, 2S, D)
            var c2p = torch.matmul(query, posKey.transpose(-1, -2));                 // (B, H, Q, 2S)
            var index = torch.clamp(relative + span, 0, span * 2 - 1)
                .expand(query.shape[0], query.shape[1], queryLength, keyLength);
            score = score + torch.gather(c2p, -1, index) / _scale;
        }
        if (_p2c)
        {
            var posQuery = SplitHeads((_shareAttKey ? query_proj : pos_query_proj!).call(embeddings)); // (1, H, 2S, D)
            var index = torch.clamp(-relative + span, 0, span * 2 - 1)
                .expand(query.shape[0], query.shape[1], keyLength, keyLength);
            var p2c = torch.matmul(key, posQuery.transpose(-1, -2));                 // (B, H, K, 2S)
            score = score + torch.gather(p2c, -1, index).transpose(-1, -2) / _scale;
        }
        return score;
    }

    /// <summary>(B, T, H·D) → (B, H, T, D).</summary>
    private Tensor SplitHeads(Tensor x) => x.view([.. x.shape[..^1], _heads, -1]).permute(0, 2, 1, 3);
}

/// <summary>Self-attention and its output block.</summary>
public sealed class DebertaV2Attention : nn.Module
{
#pragma warning disable IDE1006 // Hugging Face's module name
    private readonly DisentangledSelfAttention self;
#pragma warning restore IDE1006
    private readonly DebertaSelfOutput output;

    /// <summary>Sized by the config.</summary>
    public DebertaV2Attention(DebertaV2Config config) : base(nameof(DebertaV2Attention))
    {
        self = new DisentangledSelfAttention(config);
        output = new DebertaSelfOutput(config, nn.LayerNorm(config.HiddenSize, config.LayerNormEps));
        RegisterComponents();
    }

    /// <summary>(B, T, C) → (B, T, C).</summary>
    public Tensor forward(Tensor hidden, Tensor mask, Tensor? relativePositions, Tensor? relEmbeddings)
    {
        using var scope = torch.NewDisposeScope();
        return output.forward(self.forward(hidden, mask, relativePositions, relEmbeddings), hidden).MoveToOuterDisposeScope();
    }
}

/// <summary>One post-norm encoder layer: attention, then the feed-forward block.</summary>
public sealed class DebertaV2Layer : nn.Module
{
    private readonly DebertaV2Attention attention;
    private readonly DebertaIntermediate intermediate;
    private readonly DebertaOutput output;

    /// <summary>Sized by the config.</summary>
    public DebertaV2Layer(DebertaV2Config config) : base(nameof(DebertaV2Layer))
    {
        attention = new DebertaV2Attention(config);
        intermediate = new DebertaIntermediate(config);
        output = new DebertaOutput(config, nn.LayerNorm(config.HiddenSize, config.LayerNormEps));
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

/// <summary>The convolution DeBERTa-v2 may apply after its first layer (<c>conv_kernel_size</c> &gt; 0).</summary>
[TargetModules("LayerNorm")]
public sealed partial class ConvLayer : nn.Module
{
    private readonly Conv1d conv;
    [ComponentName(Name = "LayerNorm")] private nn.Module<Tensor, Tensor> layer_norm;
    private readonly Dropout dropout;
    private readonly Func<Tensor, Tensor> _activation;

    /// <summary>Sized by the config.</summary>
    public ConvLayer(DebertaV2Config config) : base(nameof(ConvLayer))
    {
        var kernel = config.ConvKernelSize;
        conv = nn.Conv1d(config.HiddenSize, config.HiddenSize, kernel, padding: (kernel - 1) / 2, groups: config.ConvGroups);
        layer_norm = nn.LayerNorm(config.HiddenSize, config.LayerNormEps);
        dropout = nn.Dropout(config.HiddenDropoutProb);
        _activation = Activations.Get(config.ConvAct);
        RegisterComponents();
    }

    /// <summary>
    /// LayerNorm(<paramref name="residual"/> + act(conv(<paramref name="hidden"/>))) with padding
    /// positions zeroed by <paramref name="mask"/> (B, T), before the activation and after the norm.
    /// </summary>
    public Tensor forward(Tensor hidden, Tensor residual, Tensor mask)
    {
        using var scope = torch.NewDisposeScope();
        var output = conv.call(hidden.permute(0, 2, 1).contiguous()).permute(0, 2, 1);
        var padding = mask.to(ScalarType.Bool).logical_not().unsqueeze(-1);
        output = _activation(dropout.call(output.masked_fill(padding, 0)));
        var normalized = layer_norm.call(residual + output);
        return (normalized * mask.unsqueeze(2).to(normalized.dtype)).MoveToOuterDisposeScope();
    }
}
