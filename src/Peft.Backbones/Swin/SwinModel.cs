// Swin Transformer's blocks, stages and image-classification head, following transformers' models/swin/modeling_swin.py.
using Peft.Backbones.Shared;
using Peft.Modeling;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Peft.Backbones.Swin;

/// <summary>
/// A block: window attention (its windows shifted by half a window in every other block) with a
/// residual, then an MLP with a residual. Grids no larger than a window attend as one unshifted window.
/// </summary>
public sealed class SwinLayer : nn.Module
{
    private readonly SwinAttention attention;
    private readonly LayerNorm layernorm_before;
    private readonly LayerNorm layernorm_after;
    private readonly SwinMlp mlp;
    private readonly Dropout dropout;
    private readonly nn.Module<Tensor, Tensor> drop_path;
    private readonly int _window;
    private readonly int _shift;

    /// <summary>A block over <paramref name="dim"/> channels; <paramref name="shift"/> is 0 or half a window.</summary>
    public SwinLayer(SwinConfig config, int dim, int heads, int shift, double dropPath) : base(nameof(SwinLayer))
    {
        attention = new SwinAttention(config, dim, heads);
        layernorm_before = nn.LayerNorm(dim, config.LayerNormEps);
        layernorm_after = nn.LayerNorm(dim, config.LayerNormEps);
        mlp = new SwinMlp(config, dim);
        dropout = nn.Dropout(config.HiddenDropoutProb);
        drop_path = DropPath.Create(dropPath);
        _window = config.WindowSize;
        _shift = shift;
        RegisterComponents();
    }

    /// <summary>(B, H·W, C) on an (H, W) grid → (B, H·W, C).</summary>
    public Tensor forward(Tensor hidden, long height, long width)
    {
        using var scope = torch.NewDisposeScope();
        // transformers' set_shift_and_window_size: a grid no larger than a window is one window, unshifted.
        long window = _window, shift = _shift;
        if (Math.Min(height, width) <= window) (window, shift) = (Math.Min(height, width), 0);
        if (window != attention.Window)
        {
            throw new NotSupportedException(
                $"A {height}×{width} patch grid is smaller than Swin's {attention.Window}-patch window, so its relative position bias does not fit (transformers fails here too); use larger images.");
        }
        var (batch, channels) = (hidden.shape[0], hidden.shape[2]);
        var map = layernorm_before.call(hidden).view(batch, height, width, channels);
        var (padRight, padBottom) = ((window - width % window) % window, (window - height % window) % window);
        map = nn.functional.pad(map, [0, 0, 0, padRight, 0, padBottom]);
        var (paddedHeight, paddedWidth) = (map.shape[1], map.shape[2]);
        if (shift > 0) map = torch.roll(map, [-shift, -shift], [1, 2]);

        var windows = Partition(map, window).view(-1, window * window, channels);        // (B·nW, w², C)
        var mask = shift > 0 ? ShiftMask(paddedHeight, paddedWidth, window, shift, map.device) : null;
        var attended = dropout.call(attention.forward(windows, mask)).view(-1, window, window, channels);

        map = Reverse(attended, window, paddedHeight, paddedWidth);
        if (shift > 0) map = torch.roll(map, [shift, shift], [1, 2]);
        var tokens = map[.., ..(int)height, ..(int)width, ..].contiguous().view(batch, height * width, channels);
        hidden = hidden + drop_path.call(tokens);
        hidden = dropout.call(mlp.call(layernorm_after.call(hidden))) + hidden;
        return hidden.MoveToOuterDisposeScope();
    }

    /// <summary>(B, H, W, C) → (B·H/w·W/w, w, w, C), windows in row-major order per image.</summary>
    private static Tensor Partition(Tensor map, long window)
    {
        var (batch, height, width, channels) = (map.shape[0], map.shape[1], map.shape[2], map.shape[3]);
        return map.view(batch, height / window, window, width / window, window, channels).transpose(2, 3).contiguous().view(-1, window, window, channels);
    }

    /// <summary>The inverse of <see cref="Partition"/>.</summary>
    private static Tensor Reverse(Tensor windows, long window, long height, long width)
    {
        var channels = windows.shape[^1];
        return windows.view(-1, height / window, width / window, window, window, channels).transpose(2, 3).contiguous().view(-1, height, width, channels);
    }

    /// <summary>
    /// After the cyclic shift a window may hold patches from up to four regions that were not
    /// neighbours; attention between different regions gets −100 (windows, w², w²).
    /// </summary>
    private static Tensor ShiftMask(long height, long width, long window, long shift, Device device)
    {
        static long Region(long position, long size, long window, long shift) =>
            position < size - window ? 0 : position < size - shift ? 1 : 2;
        var labels = new float[height * width];
        for (long i = 0; i < height; i++)
            for (long j = 0; j < width; j++)
                labels[i * width + j] = Region(i, height, window, shift) * 3 + Region(j, width, window, shift);
        var regions = Partition(torch.tensor(labels, [1, height, width, 1], device: device), window).view(-1, window * window);
        var different = regions.unsqueeze(1) - regions.unsqueeze(2);
        return torch.zeros_like(different).masked_fill(different.ne(0), -100.0);
    }
}

/// <summary>A stage: its blocks, then patch merging (every stage but the last).</summary>
public sealed class SwinStage : nn.Module, IGradientCheckpointing
{
    private readonly ModuleList<SwinLayer> blocks;
    private readonly SwinPatchMerging? downsample;

    /// <summary>Stage <paramref name="stage"/>; <paramref name="dropPaths"/> are its blocks' stochastic-depth rates.</summary>
    public SwinStage(SwinConfig config, int stage, IReadOnlyList<double> dropPaths) : base(nameof(SwinStage))
    {
        var dim = config.StageDim(stage);
        blocks = nn.ModuleList(Enumerable.Range(0, config.Depths[stage])
            .Select(i => new SwinLayer(config, dim, config.NumHeads[stage], i % 2 == 0 ? 0 : config.WindowSize / 2, dropPaths[i]))
            .ToArray());
        downsample = stage < config.Depths.Count - 1 ? new SwinPatchMerging(dim) : null;
        RegisterComponents();
    }

    /// <summary>(B, H·W, C) → the next stage's tokens and grid.</summary>
    public (Tensor Hidden, long Height, long Width) forward(Tensor hidden, long height, long width)
    {
        using var scope = torch.NewDisposeScope();
        // Per block; the patch merging after the blocks is kept, as in transformers. The recomputation reads the grid
        // from copies: height and width change below, long before backward runs.
        var (blockHeight, blockWidth) = (height, width);
        foreach (var block in blocks) hidden = GradientCheckpoint.Run(GradientCheckpointing, training, (x, _) => block.forward(x, blockHeight, blockWidth), hidden, null);
        if (downsample is not null)
        {
            hidden = downsample.forward(hidden, height, width);
            (height, width) = ((height + 1) / 2, (width + 1) / 2);
        }
        return (hidden.MoveToOuterDisposeScope(), height, width);
    }

    /// <inheritdoc />
    public bool GradientCheckpointing { get; set; }
}

/// <summary>The stages (<c>encoder.layers</c>).</summary>
public sealed class SwinEncoder : nn.Module
{
    private readonly ModuleList<SwinStage> layers;

    /// <summary>One stage per entry of depths; stochastic depth rises linearly over all blocks.</summary>
    public SwinEncoder(SwinConfig config) : base(nameof(SwinEncoder))
    {
        var total = config.Depths.Sum();
        var rates = Enumerable.Range(0, total).Select(i => config.DropPathRate * i / Math.Max(total - 1, 1)).ToArray();
        layers = nn.ModuleList(Enumerable.Range(0, config.Depths.Count)
            .Select(s => new SwinStage(config, s, rates.Skip(config.Depths.Take(s).Sum()).Take(config.Depths[s]).ToArray()))
            .ToArray());
        RegisterComponents();
    }

    /// <summary>(B, H·W, C) → the last stage's tokens.</summary>
    public Tensor forward(Tensor hidden, long height, long width)
    {
        foreach (var stage in layers) (hidden, height, width) = stage.forward(hidden, height, width);
        return hidden;
    }
}

/// <summary>The bare model (<c>swin</c>): embeddings, encoder, LayerNorm, mean pooling.</summary>
public sealed class SwinModel : nn.Module<Tensor, Tensor>
{
    private readonly SwinEmbeddings embeddings;
    private readonly SwinEncoder encoder;
    private readonly LayerNorm layernorm;
    private readonly AdaptiveAvgPool1d pooler;

    /// <summary>A randomly initialised model.</summary>
    public SwinModel(SwinConfig config) : base(nameof(SwinModel))
    {
        embeddings = new SwinEmbeddings(config);
        encoder = new SwinEncoder(config);
        layernorm = nn.LayerNorm(config.NumFeatures, config.LayerNormEps);
        pooler = nn.AdaptiveAvgPool1d(1);
        RegisterComponents();
    }

    /// <summary>(B, channels, H, W) → the pooled features (B, C).</summary>
    public override Tensor forward(Tensor pixels)
    {
        using var scope = torch.NewDisposeScope();
        var (hidden, height, width) = embeddings.forward(pixels);
        hidden = layernorm.call(encoder.forward(hidden, height, width));             // (B, T, C)
        return pooler.call(hidden.transpose(1, 2)).flatten(1).MoveToOuterDisposeScope();
    }
}

/// <summary>Swin classifying an image from its mean-pooled last stage.</summary>
[TargetModules("classifier")]
public sealed partial class SwinForImageClassification : PreTrainedModel
{
    private const string EncoderName = "swin";
    private nn.Module<Tensor, Tensor> classifier;

    /// <summary>A randomly initialised model with <c>num_labels</c> outputs.</summary>
    public SwinForImageClassification(SwinConfig config) : base(nameof(SwinForImageClassification), config, TaskType.ImageClassification)
    {
        RegisterBaseModel(EncoderName, new SwinModel(config));
        classifier = nn.Linear(config.NumFeatures, config.NumLabels);
        RegisterComponents();
    }

    private SwinModel Encoder => Registered<SwinModel>(EncoderName);

    /// <summary>Swin has no token embedding; prompt learning does not apply. This is the patch convolution.</summary>
    public override nn.Module<Tensor, Tensor> InputEmbeddings =>
        (nn.Module<Tensor, Tensor>)named_modules().First(m => m.name == "swin.embeddings.patch_embeddings.projection").module;

    /// <inheritdoc />
    public override string BaseModelPrefix => EncoderName;

    /// <inheritdoc />
    public override ModuleRenames ClassicNames => SwinArchitecture.ClassicNames;

    /// <inheritdoc />
    public override ModelOutputs forward(ModelInputs inputs)
    {
        using var scope = torch.NewDisposeScope();
        var pixels = inputs.RequirePixelValues("Swin");
        var logits = classifier.call(Encoder.call(pixels));
        var loss = inputs.Labels is null ? null : Losses.SequenceClassification(logits, inputs.Labels, Config.NumLabels);
        return new ModelOutputs { Logits = logits.MoveToOuterDisposeScope(), Loss = loss?.MoveToOuterDisposeScope() };
    }
}
