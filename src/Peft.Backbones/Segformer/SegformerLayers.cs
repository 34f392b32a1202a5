// SegFormer's encoder (Mix Transformer), following transformers' models/segformer/modeling_segformer.py
// with transformers 5's run-time module names (stages.N.blocks.M, q_proj ... o_proj, sequence_reduction, mlp.fc1/fc2).
// Its LayerNorms use PyTorch's default epsilon (1e-5), not layer_norm_eps, as the reference's do.
using Peft.Backbones.Shared;
using Peft.Modeling;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Peft.Backbones.Segformer;

/// <summary>A stage's input: an overlapping strided convolution (padding = kernel / 2), then LayerNorm.</summary>
[TargetModules("proj")]
public sealed partial class SegformerOverlapPatchEmbeddings : nn.Module<Tensor, Tensor>
{
    private nn.Module<Tensor, Tensor> proj;
    private readonly LayerNorm layer_norm;

    /// <summary>Embeddings of stage <paramref name="stage"/>.</summary>
    public SegformerOverlapPatchEmbeddings(SegformerConfig config, int stage) : base(nameof(SegformerOverlapPatchEmbeddings))
    {
        var inputs = stage == 0 ? config.NumChannels : config.HiddenSizes[stage - 1];
        proj = nn.Conv2d(inputs, config.HiddenSizes[stage], config.PatchSizes[stage], stride: config.Strides[stage], padding: config.PatchSizes[stage] / 2);
        layer_norm = nn.LayerNorm(config.HiddenSizes[stage]);
        RegisterComponents();
    }

    /// <summary>(B, c, H, W) → (B, h·w, C).</summary>
    public override Tensor forward(Tensor map) => Embed(map).Hidden;

    /// <summary>(B, c, H, W) → the tokens (B, h·w, C) and the new grid (h, w).</summary>
    public (Tensor Hidden, long Height, long Width) Embed(Tensor map)
    {
        using var scope = torch.NewDisposeScope();
        var projected = proj.call(map);                                              // (B, C, h, w)
        var hidden = layer_norm.call(projected.flatten(2).transpose(1, 2));
        return (hidden.MoveToOuterDisposeScope(), projected.shape[2], projected.shape[3]);
    }
}

/// <summary>Shrinks the key/value token grid by a strided convolution, then LayerNorm.</summary>
[TargetModules("sequence_reduction")]
public sealed partial class SegformerSequenceReduction : nn.Module
{
    private nn.Module<Tensor, Tensor> sequence_reduction;
    private readonly LayerNorm layer_norm;

    /// <summary>A reduction by <paramref name="ratio"/> in each direction.</summary>
    public SegformerSequenceReduction(int channels, int ratio) : base(nameof(SegformerSequenceReduction))
    {
        sequence_reduction = nn.Conv2d(channels, channels, ratio, stride: ratio);
        layer_norm = nn.LayerNorm(channels);
        RegisterComponents();
    }

    /// <summary>(B, H·W, C) → (B, H/r · W/r, C).</summary>
    public Tensor forward(Tensor hidden, long height, long width)
    {
        using var scope = torch.NewDisposeScope();
        var map = hidden.transpose(1, 2).reshape(hidden.shape[0], hidden.shape[2], height, width);
        var reduced = sequence_reduction.call(map).reshape(hidden.shape[0], hidden.shape[2], -1).transpose(1, 2);
        return layer_norm.call(reduced).MoveToOuterDisposeScope();
    }
}

/// <summary>Efficient self-attention: queries over every token, keys and values over the reduced grid.</summary>
[TargetModules("q_proj", "k_proj", "v_proj", "o_proj")]
public sealed partial class SegformerAttention : nn.Module
{
#pragma warning disable IDE1006 // transformers 5's module names
    private nn.Module<Tensor, Tensor> q_proj;
    private nn.Module<Tensor, Tensor> k_proj;
    private nn.Module<Tensor, Tensor> v_proj;
    private nn.Module<Tensor, Tensor> o_proj;
    private readonly SegformerSequenceReduction? sequence_reduction;
#pragma warning restore IDE1006
    private readonly int _headDim;
    private readonly double _dropout;
    private readonly AttentionImplementation _attention;

    /// <summary>The attention of stage <paramref name="stage"/>.</summary>
    public SegformerAttention(SegformerConfig config, int stage) : base(nameof(SegformerAttention))
    {
        var channels = config.HiddenSizes[stage];
        q_proj = nn.Linear(channels, channels);
        k_proj = nn.Linear(channels, channels);
        v_proj = nn.Linear(channels, channels);
        o_proj = nn.Linear(channels, channels);
        sequence_reduction = config.SrRatios[stage] > 1 ? new SegformerSequenceReduction(channels, config.SrRatios[stage]) : null;
        _headDim = channels / config.NumAttentionHeads[stage];
        _dropout = config.AttentionProbsDropoutProb;
        _attention = config.AttnImplementation;
        RegisterComponents();
    }

    /// <summary>(B, H·W, C) → (B, H·W, C).</summary>
    public Tensor forward(Tensor hidden, long height, long width)
    {
        using var scope = torch.NewDisposeScope();
        var (batch, length) = (hidden.shape[0], hidden.shape[1]);
        var q = q_proj.call(hidden).view(batch, length, -1, _headDim).transpose(1, 2);     // (B, heads, N, d)
        var reduced = sequence_reduction?.forward(hidden, height, width) ?? hidden;          // (B, N', C)
        var k = k_proj.call(reduced).view(batch, reduced.shape[1], -1, _headDim).transpose(1, 2);
        var v = v_proj.call(reduced).view(batch, reduced.shape[1], -1, _headDim).transpose(1, 2);
        var context = VisionAttention.Compute(_attention, q, k, v, null, _dropout, training);
        return o_proj.call(context.transpose(1, 2).reshape(batch, length, -1)).MoveToOuterDisposeScope();
    }
}

/// <summary>The Mix-FFN's 3×3 depth-wise convolution, which stands in for position embeddings.</summary>
[TargetModules("dwconv")]
public sealed partial class SegformerDepthWiseConv : nn.Module
{
    private nn.Module<Tensor, Tensor> dwconv;

    /// <summary>One 3×3 filter per channel.</summary>
    public SegformerDepthWiseConv(int channels) : base(nameof(SegformerDepthWiseConv))
    {
        dwconv = nn.Conv2d(channels, channels, 3, stride: 1, padding: 1, groups: channels);
        RegisterComponents();
    }

    /// <summary>(B, H·W, C) → (B, H·W, C).</summary>
    public Tensor forward(Tensor hidden, long height, long width)
    {
        using var scope = torch.NewDisposeScope();
        var map = hidden.transpose(1, 2).reshape(hidden.shape[0], hidden.shape[2], height, width);
        return dwconv.call(map).flatten(2).transpose(1, 2).MoveToOuterDisposeScope();
    }
}

/// <summary>Mix-FFN: fc1, depth-wise convolution, activation, fc2.</summary>
[TargetModules("fc1", "fc2")]
public sealed partial class SegformerMixMlp : nn.Module
{
    private nn.Module<Tensor, Tensor> fc1;
    private readonly SegformerDepthWiseConv dwconv;
    private nn.Module<Tensor, Tensor> fc2;
    private readonly Dropout dropout;
    private readonly Func<Tensor, Tensor> _activation;

    /// <summary>The Mix-FFN of stage <paramref name="stage"/>.</summary>
    public SegformerMixMlp(SegformerConfig config, int stage) : base(nameof(SegformerMixMlp))
    {
        var channels = config.HiddenSizes[stage];
        var inner = (int)(channels * config.MlpRatios[stage]);
        fc1 = nn.Linear(channels, inner);
        dwconv = new SegformerDepthWiseConv(inner);
        fc2 = nn.Linear(inner, channels);
        dropout = nn.Dropout(config.HiddenDropoutProb);
        _activation = Activations.Get(config.HiddenAct);
        RegisterComponents();
    }

    /// <summary>(B, H·W, C) → (B, H·W, C).</summary>
    public Tensor forward(Tensor hidden, long height, long width)
    {
        using var scope = torch.NewDisposeScope();
        var inner = dropout.call(_activation(dwconv.forward(fc1.call(hidden), height, width)));
        return dropout.call(fc2.call(inner)).MoveToOuterDisposeScope();
    }
}

/// <summary>A pre-norm block: x + attention(norm(x)), then x + Mix-FFN(norm(x)), each through stochastic depth.</summary>
public sealed class SegformerLayer : nn.Module
{
    private readonly LayerNorm layernorm_before;
    private readonly SegformerAttention attention;
    private readonly nn.Module<Tensor, Tensor> drop_path;
    private readonly LayerNorm layernorm_after;
    private readonly SegformerMixMlp mlp;
    private readonly Dropout hidden_dropout;

    /// <summary>A block of stage <paramref name="stage"/> with stochastic-depth rate <paramref name="dropPath"/>.</summary>
    public SegformerLayer(SegformerConfig config, int stage, double dropPath) : base(nameof(SegformerLayer))
    {
        var channels = config.HiddenSizes[stage];
        layernorm_before = nn.LayerNorm(channels);
        attention = new SegformerAttention(config, stage);
        drop_path = DropPath.Create(dropPath);
        layernorm_after = nn.LayerNorm(channels);
        mlp = new SegformerMixMlp(config, stage);
        hidden_dropout = nn.Dropout(config.HiddenDropoutProb);
        RegisterComponents();
    }

    /// <summary>(B, H·W, C) → (B, H·W, C).</summary>
    public Tensor forward(Tensor hidden, long height, long width)
    {
        using var scope = torch.NewDisposeScope();
        var attended = hidden_dropout.call(attention.forward(layernorm_before.call(hidden), height, width));
        hidden = drop_path.call(attended) + hidden;
        hidden = drop_path.call(mlp.forward(layernorm_after.call(hidden), height, width)) + hidden;
        return hidden.MoveToOuterDisposeScope();
    }
}

/// <summary>One encoder stage: overlapping patch embeddings, blocks, LayerNorm; its output is a feature map.</summary>
public sealed class SegformerStage : nn.Module<Tensor, Tensor>, IGradientCheckpointing
{
    private readonly SegformerOverlapPatchEmbeddings patch_embeddings;
    private readonly ModuleList<SegformerLayer> blocks;
    private readonly LayerNorm layer_norm;

    /// <summary>Stage <paramref name="stage"/>; <paramref name="dropPaths"/> are its blocks' stochastic-depth rates.</summary>
    public SegformerStage(SegformerConfig config, int stage, IEnumerable<double> dropPaths) : base(nameof(SegformerStage))
    {
        patch_embeddings = new SegformerOverlapPatchEmbeddings(config, stage);
        blocks = nn.ModuleList(dropPaths.Select(rate => new SegformerLayer(config, stage, rate)).ToArray());
        layer_norm = nn.LayerNorm(config.HiddenSizes[stage]);
        RegisterComponents();
    }

    /// <summary>(B, c, H, W) → (B, C, h, w).</summary>
    public override Tensor forward(Tensor map)
    {
        using var scope = torch.NewDisposeScope();
        var (hidden, height, width) = patch_embeddings.Embed(map);
        foreach (var block in blocks) hidden = GradientCheckpoint.Run(GradientCheckpointing, training, (x, _) => block.forward(x, height, width), hidden, null);
        hidden = layer_norm.call(hidden);
        return hidden.reshape(map.shape[0], height, width, -1).permute(0, 3, 1, 2).contiguous().MoveToOuterDisposeScope();
    }

    /// <inheritdoc />
    public bool GradientCheckpointing { get; set; }
}
