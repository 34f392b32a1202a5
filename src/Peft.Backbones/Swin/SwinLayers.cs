// Swin Transformer's embeddings, (shifted) window attention with relative position bias and patch
// merging, following transformers' models/swin/modeling_swin.py with transformers 5's run-time
// module names (q_proj ... o_proj, relative_position_bias, mlp.fc1/fc2).
using Peft.Backbones.Shared;
using Peft.Modeling;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Peft.Backbones.Swin;

/// <summary>Cuts an image (padded to a multiple of the patch size) into patches and projects each.</summary>
[TargetModules("projection")]
public sealed partial class SwinPatchEmbeddings : nn.Module<Tensor, Tensor>
{
    private nn.Module<Tensor, Tensor> projection;
    private readonly int _patch;

    /// <summary>A patch_size × patch_size convolution with stride patch_size.</summary>
    public SwinPatchEmbeddings(SwinConfig config) : base(nameof(SwinPatchEmbeddings))
    {
        projection = nn.Conv2d(config.NumChannels, config.EmbedDim, config.PatchSize, stride: config.PatchSize);
        _patch = config.PatchSize;
        RegisterComponents();
    }

    /// <summary>(B, channels, H, W) → (B, C, ⌈H/p⌉, ⌈W/p⌉).</summary>
    public override Tensor forward(Tensor pixels)
    {
        using var scope = torch.NewDisposeScope();
        var (height, width) = (pixels.shape[2], pixels.shape[3]);
        var padded = nn.functional.pad(pixels, [0, (_patch - width % _patch) % _patch, 0, (_patch - height % _patch) % _patch]);
        return projection.call(padded).MoveToOuterDisposeScope();
    }
}

/// <summary>Patch embeddings, LayerNorm, optional absolute positions, dropout.</summary>
public sealed class SwinEmbeddings : nn.Module
{
    private readonly SwinPatchEmbeddings patch_embeddings;
#pragma warning disable IDE1006 // Hugging Face's parameter name
    private readonly Parameter? position_embeddings;
#pragma warning restore IDE1006
    private readonly LayerNorm norm;
    private readonly Dropout dropout;

    /// <summary>Embeddings sized by the config.</summary>
    public SwinEmbeddings(SwinConfig config) : base(nameof(SwinEmbeddings))
    {
        patch_embeddings = new SwinPatchEmbeddings(config);
        var side = config.ImageSize / config.PatchSize;
        position_embeddings = config.UseAbsoluteEmbeddings ? new Parameter(torch.zeros(1, side * side, config.EmbedDim)) : null;
        norm = nn.LayerNorm(config.EmbedDim);
        dropout = nn.Dropout(config.HiddenDropoutProb);
        RegisterComponents();
    }

    /// <summary>(B, channels, H, W) → the tokens (B, h·w, C) and the patch grid (h, w).</summary>
    public (Tensor Hidden, long Height, long Width) forward(Tensor pixels)
    {
        using var scope = torch.NewDisposeScope();
        var map = patch_embeddings.call(pixels);                                     // (B, C, h, w)
        var (height, width) = (map.shape[2], map.shape[3]);
        var hidden = norm.call(map.flatten(2).transpose(1, 2));
        if (position_embeddings is not null) hidden = hidden + Positions(height, width);
        return (dropout.call(hidden).MoveToOuterDisposeScope(), height, width);
    }

    /// <summary>The learned positions, resized bicubically for another grid (transformers' interpolate_pos_encoding).</summary>
    private Tensor Positions(long height, long width)
    {
        var positions = position_embeddings!;
        if (positions.shape[1] == height * width && height == width) return positions;
        var (count, dim) = (positions.shape[1], positions.shape[2]);
        var side = (long)Math.Sqrt(count);
        var grid = positions.reshape(1, side, side, dim).permute(0, 3, 1, 2);
        var resized = nn.functional.interpolate(grid, size: [height, width], mode: InterpolationMode.Bicubic, align_corners: false);
        return resized.permute(0, 2, 3, 1).reshape(1, -1, dim);
    }
}

/// <summary>The learned bias of each relative offset inside a window, per head.</summary>
public sealed class SwinRelativePositionBias : nn.Module
{
#pragma warning disable IDE1006 // Hugging Face's names
    private readonly Parameter relative_position_bias_table;
#pragma warning restore IDE1006
    private readonly long[] _index;
    private readonly int _window;

    /// <summary>A (2w − 1)² × heads table for windows of side <paramref name="window"/>.</summary>
    public SwinRelativePositionBias(int heads, int window) : base(nameof(SwinRelativePositionBias))
    {
        _window = window;
        relative_position_bias_table = new Parameter(torch.zeros((2 * window - 1) * (2 * window - 1), heads));
        // Offset (dh, dw) between tokens i and j of a window, as one index into the table. Determined
        // by the window size alone, so not part of the state (transformers 5 keeps it non-persistent too).
        var index = _index = new long[window * window * window * window];
        for (int i = 0; i < window * window; i++)
            for (int j = 0; j < window * window; j++)
                index[i * window * window + j] = (i / window - j / window + window - 1) * (2 * window - 1) + (i % window - j % window + window - 1);
        RegisterComponents();
    }

    /// <summary>Side of the windows the table is for.</summary>
    public int Window => _window;

    /// <summary>The bias (1, heads, w², w²).</summary>
    public Tensor forward()
    {
        using var scope = torch.NewDisposeScope();
        var area = _window * _window;
        var index = torch.tensor(_index, device: relative_position_bias_table.device);
        var bias = relative_position_bias_table.index_select(0, index).view(area, area, -1);
        return bias.permute(2, 0, 1).contiguous().unsqueeze(0).MoveToOuterDisposeScope();
    }
}

/// <summary>Self-attention inside windows, with the relative position bias and, for shifted windows, a mask.</summary>
[TargetModules("q_proj", "k_proj", "v_proj", "o_proj")]
public sealed partial class SwinAttention : nn.Module
{
#pragma warning disable IDE1006 // transformers 5's module names
    private nn.Module<Tensor, Tensor> q_proj;
    private nn.Module<Tensor, Tensor> k_proj;
    private nn.Module<Tensor, Tensor> v_proj;
    private nn.Module<Tensor, Tensor> o_proj;
    private readonly SwinRelativePositionBias relative_position_bias;
#pragma warning restore IDE1006
    private readonly int _headDim;
    private readonly double _dropout;
    private readonly AttentionImplementation _attention;

    /// <summary>Attention over <paramref name="dim"/> channels with <paramref name="heads"/> heads.</summary>
    public SwinAttention(SwinConfig config, int dim, int heads) : base(nameof(SwinAttention))
    {
        q_proj = nn.Linear(dim, dim, hasBias: config.QkvBias);
        k_proj = nn.Linear(dim, dim, hasBias: config.QkvBias);
        v_proj = nn.Linear(dim, dim, hasBias: config.QkvBias);
        o_proj = nn.Linear(dim, dim);
        relative_position_bias = new SwinRelativePositionBias(heads, config.WindowSize);
        _headDim = dim / heads;
        _dropout = config.AttentionProbsDropoutProb;
        _attention = config.AttnImplementation;
        RegisterComponents();
    }

    /// <summary>Side of the windows the position bias is for.</summary>
    public int Window => relative_position_bias.Window;

    /// <summary>(B·windows, w², C) → (B·windows, w², C); <paramref name="mask"/> is (windows, w², w²), additive.</summary>
    public Tensor forward(Tensor windows, Tensor? mask)
    {
        using var scope = torch.NewDisposeScope();
        var (count, length) = (windows.shape[0], windows.shape[1]);
        var shape = new long[] { count, length, -1, _headDim };
        var q = q_proj.call(windows).view(shape).transpose(1, 2);                     // (B·nW, heads, w², d)
        var k = k_proj.call(windows).view(shape).transpose(1, 2);
        var v = v_proj.call(windows).view(shape).transpose(1, 2);
        var bias = relative_position_bias.forward();                                 // (1, heads, w², w²)
        if (mask is not null)
        {
            var perWindow = mask.unsqueeze(1).unsqueeze(0).expand(count / mask.shape[0], -1, -1, -1, -1).reshape(-1, 1, length, length);
            bias = bias + perWindow;
        }
        var context = VisionAttention.Compute(_attention, q, k, v, bias, _dropout, training);
        return o_proj.call(context.transpose(1, 2).reshape(count, length, -1)).MoveToOuterDisposeScope();
    }
}

/// <summary>fc1, activation, fc2.</summary>
[TargetModules("fc1", "fc2")]
public sealed partial class SwinMlp : nn.Module<Tensor, Tensor>
{
    private nn.Module<Tensor, Tensor> fc1;
    private nn.Module<Tensor, Tensor> fc2;
    private readonly Func<Tensor, Tensor> _activation;

    /// <summary>dim → mlp_ratio · dim → dim.</summary>
    public SwinMlp(SwinConfig config, int dim) : base(nameof(SwinMlp))
    {
        var inner = (int)(config.MlpRatio * dim);
        fc1 = nn.Linear(dim, inner);
        fc2 = nn.Linear(inner, dim);
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

/// <summary>Halves the grid: each 2 × 2 neighbourhood's channels concatenated (4C), LayerNorm, then 4C → 2C.</summary>
[TargetModules("reduction")]
public sealed partial class SwinPatchMerging : nn.Module
{
    private nn.Module<Tensor, Tensor> reduction;
    private readonly LayerNorm norm;

    /// <summary>Merging for <paramref name="dim"/> input channels.</summary>
    public SwinPatchMerging(int dim) : base(nameof(SwinPatchMerging))
    {
        reduction = nn.Linear(4 * dim, 2 * dim, hasBias: false);
        norm = nn.LayerNorm(4 * dim);
        RegisterComponents();
    }

    /// <summary>(B, H·W, C) → (B, ⌈H/2⌉·⌈W/2⌉, 2C).</summary>
    public Tensor forward(Tensor hidden, long height, long width)
    {
        using var scope = torch.NewDisposeScope();
        var (batch, channels) = (hidden.shape[0], hidden.shape[2]);
        var map = nn.functional.pad(hidden.view(batch, height, width, channels), [0, 0, 0, width % 2, 0, height % 2]);
        // Rows then columns: (0, 0), (1, 0), (0, 1), (1, 1), the reference's order.
        Tensor Corner(long row, long col) => map[TensorIndex.Colon, TensorIndex.Slice(row, null, 2), TensorIndex.Slice(col, null, 2), TensorIndex.Colon];
        var merged = torch.cat([Corner(0, 0), Corner(1, 0), Corner(0, 1), Corner(1, 1)], -1).view(batch, -1, 4 * channels);
        return reduction.call(norm.call(merged)).MoveToOuterDisposeScope();
    }
}
