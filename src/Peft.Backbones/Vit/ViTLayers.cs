// ViT's embeddings and encoder layer, following transformers' models/vit/modeling_vit.py (eager
// attention) with transformers 5's run-time module names (q_proj ... o_proj, mlp.fc1/fc2).
using Peft.Backbones.Shared;
using Peft.Modeling;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Peft.Backbones.Vit;

/// <summary>Cuts an image into non-overlapping patches and projects each (a strided convolution).</summary>
[TargetModules("projection")]
public sealed partial class ViTPatchEmbeddings : nn.Module<Tensor, Tensor>
{
    private nn.Module<Tensor, Tensor> projection;
    private readonly int _channels;

    /// <summary>A patch_size × patch_size convolution with stride patch_size.</summary>
    public ViTPatchEmbeddings(ViTConfig config) : base(nameof(ViTPatchEmbeddings))
    {
        projection = nn.Conv2d(config.NumChannels, config.HiddenSize, config.PatchSize, stride: config.PatchSize);
        _channels = config.NumChannels;
        RegisterComponents();
    }

    /// <summary>The projection (possibly wrapped by an adapter).</summary>
    public nn.Module<Tensor, Tensor> Projection => projection;

    /// <summary>(B, channels, H, W) → (B, H/p · W/p, C).</summary>
    public override Tensor forward(Tensor pixels)
    {
        if (pixels.dim() != 4 || pixels.shape[1] != _channels)
        {
            throw new ArgumentException($"pixel_values must be (batch, {_channels}, height, width); got [{string.Join(", ", pixels.shape)}].");
        }
        using var scope = torch.NewDisposeScope();
        return projection.call(pixels).flatten(2).transpose(1, 2).MoveToOuterDisposeScope();
    }
}

/// <summary>The [CLS] token, patch embeddings and learned position embeddings.</summary>
public sealed class ViTEmbeddings : nn.Module<Tensor, Tensor>
{
#pragma warning disable IDE1006 // Hugging Face's parameter names
    private readonly Parameter cls_token;
    private readonly ViTPatchEmbeddings patch_embeddings;
    private readonly Parameter position_embeddings;
#pragma warning restore IDE1006
    private readonly Dropout dropout;
    private readonly int _patchSize;

    /// <summary>Embeddings for images of the config's size (other sizes interpolate the positions).</summary>
    public ViTEmbeddings(ViTConfig config) : base(nameof(ViTEmbeddings))
    {
        cls_token = new Parameter(torch.randn(1, 1, config.HiddenSize));
        patch_embeddings = new ViTPatchEmbeddings(config);
        position_embeddings = new Parameter(torch.randn(1, config.PatchesPerSide * config.PatchesPerSide + 1, config.HiddenSize));
        dropout = nn.Dropout(config.HiddenDropoutProb);
        _patchSize = config.PatchSize;
        RegisterComponents();
    }

    /// <summary>The patch projection.</summary>
    public nn.Module<Tensor, Tensor> Projection => patch_embeddings.Projection;

    /// <summary>(B, channels, H, W) → (B, 1 + patches, C).</summary>
    public override Tensor forward(Tensor pixels)
    {
        using var scope = torch.NewDisposeScope();
        var (height, width) = (pixels.shape[2], pixels.shape[3]);
        var patches = patch_embeddings.call(pixels);                                   // (B, N, C)
        var cls = cls_token.expand(patches.shape[0], -1, -1);
        var embeddings = torch.cat([cls, patches], 1);
        embeddings = embeddings + Positions(embeddings.shape[1] - 1, height, width);
        return dropout.call(embeddings).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// The position embeddings for <paramref name="patches"/> patches of an image of this size: the
    /// learned ones for the training size, else the patch grid's resized bicubically (transformers'
    /// interpolate_pos_encoding, which it applies only when asked and otherwise refuses other sizes).
    /// </summary>
    private Tensor Positions(long patches, long height, long width)
    {
        var positions = position_embeddings.shape[1] - 1;
        if (patches == positions && height == width) return position_embeddings;
        var dim = position_embeddings.shape[2];
        var side = (long)Math.Sqrt(positions);
        var grid = position_embeddings[.., 1..].reshape(1, side, side, dim).permute(0, 3, 1, 2);
        var resized = nn.functional.interpolate(grid, size: [height / _patchSize, width / _patchSize], mode: InterpolationMode.Bicubic, align_corners: false);
        return torch.cat([position_embeddings[.., ..1], resized.permute(0, 2, 3, 1).reshape(1, -1, dim)], 1);
    }
}

/// <summary>Multi-head self-attention over all tokens.</summary>
[TargetModules("q_proj", "k_proj", "v_proj", "o_proj")]
public sealed partial class ViTAttention : nn.Module<Tensor, Tensor>
{
#pragma warning disable IDE1006 // transformers 5's module names
    private nn.Module<Tensor, Tensor> q_proj;
    private nn.Module<Tensor, Tensor> k_proj;
    private nn.Module<Tensor, Tensor> v_proj;
    private nn.Module<Tensor, Tensor> o_proj;
#pragma warning restore IDE1006
    private readonly double _dropout;
    private readonly AttentionImplementation _attention;
    private readonly int _headDim;

    /// <summary>Attention sized by the config.</summary>
    public ViTAttention(ViTConfig config) : base(nameof(ViTAttention))
    {
        q_proj = nn.Linear(config.HiddenSize, config.HiddenSize, hasBias: config.QkvBias);
        k_proj = nn.Linear(config.HiddenSize, config.HiddenSize, hasBias: config.QkvBias);
        v_proj = nn.Linear(config.HiddenSize, config.HiddenSize, hasBias: config.QkvBias);
        o_proj = nn.Linear(config.HiddenSize, config.HiddenSize);
        _dropout = config.AttentionProbsDropoutProb;
        _attention = config.AttnImplementation;
        _headDim = config.HeadDim;
        RegisterComponents();
    }

    /// <summary>(B, T, C) → (B, T, C).</summary>
    public override Tensor forward(Tensor hidden)
    {
        using var scope = torch.NewDisposeScope();
        var shape = new long[] { hidden.shape[0], hidden.shape[1], -1, _headDim };
        var q = q_proj.call(hidden).view(shape).transpose(1, 2);                     // (B, heads, T, d)
        var k = k_proj.call(hidden).view(shape).transpose(1, 2);
        var v = v_proj.call(hidden).view(shape).transpose(1, 2);
        var context = VisionAttention.Compute(_attention, q, k, v, null, _dropout, training);
        return o_proj.call(context.transpose(1, 2).reshape(hidden.shape[0], hidden.shape[1], -1)).MoveToOuterDisposeScope();
    }
}

/// <summary>fc1, activation, fc2.</summary>
[TargetModules("fc1", "fc2")]
public sealed partial class ViTMlp : nn.Module<Tensor, Tensor>
{
    private nn.Module<Tensor, Tensor> fc1;
    private nn.Module<Tensor, Tensor> fc2;
    private readonly Func<Tensor, Tensor> _activation;

    /// <summary>hidden → intermediate → hidden.</summary>
    public ViTMlp(ViTConfig config) : base(nameof(ViTMlp))
    {
        fc1 = nn.Linear(config.HiddenSize, config.IntermediateSize);
        fc2 = nn.Linear(config.IntermediateSize, config.HiddenSize);
        _activation = Activations.Get(config.HiddenAct);
        RegisterComponents();
    }

    /// <summary>(B, T, C) → (B, T, C).</summary>
    public override Tensor forward(Tensor hidden)
    {
        using var scope = torch.NewDisposeScope();
        return fc2.call(_activation(fc1.call(hidden))).MoveToOuterDisposeScope();
    }
}

/// <summary>A pre-norm encoder layer: x + attention(norm(x)), then x + mlp(norm(x)).</summary>
public sealed class ViTLayer : nn.Module<Tensor, Tensor>
{
    private readonly ViTAttention attention;
    private readonly LayerNorm layernorm_before;
    private readonly LayerNorm layernorm_after;
    private readonly ViTMlp mlp;
    private readonly Dropout dropout;

    /// <summary>A layer sized by the config.</summary>
    public ViTLayer(ViTConfig config) : base(nameof(ViTLayer))
    {
        attention = new ViTAttention(config);
        layernorm_before = nn.LayerNorm(config.HiddenSize, config.LayerNormEps);
        layernorm_after = nn.LayerNorm(config.HiddenSize, config.LayerNormEps);
        mlp = new ViTMlp(config);
        dropout = nn.Dropout(config.HiddenDropoutProb);
        RegisterComponents();
    }

    /// <summary>(B, T, C) → (B, T, C).</summary>
    public override Tensor forward(Tensor hidden)
    {
        using var scope = torch.NewDisposeScope();
        hidden = hidden + dropout.call(attention.call(layernorm_before.call(hidden)));
        hidden = hidden + dropout.call(mlp.call(layernorm_after.call(hidden)));
        return hidden.MoveToOuterDisposeScope();
    }
}
