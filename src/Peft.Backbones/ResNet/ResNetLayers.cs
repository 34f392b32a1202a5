// ResNet's building blocks, following transformers' models/resnet/modeling_resnet.py (module names as there:
// convolution / normalization, shortcut, layer.K, stages.N.layers.M). BatchNorm keeps its running statistics,
// as transformers does; nothing is folded into the convolutions, so LoRA adapts the pretrained kernels themselves.
using Peft.Modeling;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Peft.Backbones.ResNet;

/// <summary>Convolution (no bias, padding kernel / 2), BatchNorm, then the activation unless it is a layer's last.</summary>
[TargetModules("convolution", "normalization")]
public sealed partial class ResNetConvLayer : nn.Module<Tensor, Tensor>
{
    private nn.Module<Tensor, Tensor> convolution;
    private nn.Module<Tensor, Tensor> normalization;
    private readonly Func<Tensor, Tensor>? _activation;

    /// <summary>A <paramref name="kernel"/>×<paramref name="kernel"/> convolution; a null <paramref name="activation"/> leaves the output linear.</summary>
    public ResNetConvLayer(int inputs, int outputs, int kernel = 3, int stride = 1, string? activation = "relu") : base(nameof(ResNetConvLayer))
    {
        convolution = nn.Conv2d(inputs, outputs, kernel, stride: stride, padding: kernel / 2, bias: false);
        normalization = nn.BatchNorm2d(outputs);
        _activation = activation is null ? null : Activations.Get(activation);
        RegisterComponents();
    }

    /// <summary>(B, C_in, H, W) → (B, C_out, H / stride, W / stride).</summary>
    public override Tensor forward(Tensor map)
    {
        using var scope = torch.NewDisposeScope();
        var normalized = normalization.call(convolution.call(map));
        return (_activation is null ? normalized : _activation(normalized)).MoveToOuterDisposeScope();
    }
}

/// <summary>The projection a layer's residual takes when the layer changes channels or stride: 1×1 convolution, BatchNorm.</summary>
[TargetModules("convolution", "normalization")]
public sealed partial class ResNetShortCut : nn.Module<Tensor, Tensor>
{
    private nn.Module<Tensor, Tensor> convolution;
    private nn.Module<Tensor, Tensor> normalization;

    /// <summary>C_in → C_out with <paramref name="stride"/>.</summary>
    public ResNetShortCut(int inputs, int outputs, int stride) : base(nameof(ResNetShortCut))
    {
        convolution = nn.Conv2d(inputs, outputs, 1, stride: stride, bias: false);
        normalization = nn.BatchNorm2d(outputs);
        RegisterComponents();
    }

    /// <summary>(B, C_in, H, W) → (B, C_out, H / stride, W / stride).</summary>
    public override Tensor forward(Tensor map)
    {
        using var scope = torch.NewDisposeScope();
        return normalization.call(convolution.call(map)).MoveToOuterDisposeScope();
    }
}

/// <summary>
/// One residual layer: <c>basic</c> (3×3, 3×3) or <c>bottleneck</c> (1×1 down to a quarter of the channels, 3×3, 1×1 up),
/// its input added back (through <see cref="ResNetShortCut"/> when channels or stride change), then the activation.
/// </summary>
public sealed class ResNetLayer : nn.Module<Tensor, Tensor>
{
    private readonly ResNetShortCut? shortcut;
    private readonly ModuleList<ResNetConvLayer> layer;
    private readonly Func<Tensor, Tensor> _activation;

    /// <summary>A layer of <paramref name="config"/>'s type from <paramref name="inputs"/> to <paramref name="outputs"/> channels.</summary>
    public ResNetLayer(ResNetConfig config, int inputs, int outputs, int stride) : base(nameof(ResNetLayer))
    {
        if (inputs != outputs || stride != 1) shortcut = new ResNetShortCut(inputs, outputs, stride);
        var act = config.HiddenAct;
        if (config.IsBottleneck)
        {
            var reduced = outputs / 4;
            var (first, middle) = config.DownsampleInBottleneck ? (stride, 1) : (1, stride);
            layer = nn.ModuleList(
                new ResNetConvLayer(inputs, reduced, kernel: 1, stride: first, activation: act),
                new ResNetConvLayer(reduced, reduced, stride: middle, activation: act),
                new ResNetConvLayer(reduced, outputs, kernel: 1, activation: null));
        }
        else
        {
            layer = nn.ModuleList(
                new ResNetConvLayer(inputs, outputs, stride: stride, activation: act),
                new ResNetConvLayer(outputs, outputs, activation: null));
        }
        _activation = Activations.Get(act);
        RegisterComponents();
    }

    /// <summary>(B, C_in, H, W) → (B, C_out, H / stride, W / stride).</summary>
    public override Tensor forward(Tensor map)
    {
        using var scope = torch.NewDisposeScope();
        var hidden = map;
        foreach (var conv in layer) hidden = conv.call(hidden);
        var residual = shortcut is null ? map : shortcut.call(map);
        return _activation(hidden + residual).MoveToOuterDisposeScope();
    }
}

/// <summary>A stage: its first layer changes channels (and halves the grid, but in the first stage), the rest keep them.</summary>
public sealed class ResNetStage : nn.Module<Tensor, Tensor>
{
    private readonly ModuleList<ResNetLayer> layers;

    /// <summary>Stage <paramref name="index"/> of <paramref name="config"/>.</summary>
    public ResNetStage(ResNetConfig config, int index) : base(nameof(ResNetStage))
    {
        var inputs = index == 0 ? config.EmbeddingSize : config.HiddenSizes[index - 1];
        var outputs = config.HiddenSizes[index];
        var stride = index > 0 || config.DownsampleInFirstStage ? 2 : 1;
        layers = nn.ModuleList(Enumerable.Range(0, config.Depths[index])
            .Select(i => i == 0 ? new ResNetLayer(config, inputs, outputs, stride) : new ResNetLayer(config, outputs, outputs, 1))
            .ToArray());
        RegisterComponents();
    }

    /// <summary>(B, C_in, H, W) → (B, C_out, h, w).</summary>
    public override Tensor forward(Tensor map)
    {
        using var scope = torch.NewDisposeScope();
        var hidden = map;
        foreach (var layer in layers) hidden = layer.call(hidden);
        return hidden.MoveToOuterDisposeScope();
    }
}

/// <summary>The stem: a 7×7 stride-2 <see cref="ResNetConvLayer"/> (<c>embedder</c>), then 3×3 stride-2 max pooling.</summary>
public sealed class ResNetEmbeddings : nn.Module<Tensor, Tensor>
{
    private readonly ResNetConvLayer embedder;
    private readonly int _channels;

    /// <summary>The stem of <paramref name="config"/>.</summary>
    public ResNetEmbeddings(ResNetConfig config) : base(nameof(ResNetEmbeddings))
    {
        embedder = new ResNetConvLayer(config.NumChannels, config.EmbeddingSize, kernel: 7, stride: 2, activation: config.HiddenAct);
        _channels = config.NumChannels;
        RegisterComponents();
    }

    /// <summary>The stem convolution.</summary>
    public ResNetConvLayer Embedder => embedder;

    /// <summary>(B, num_channels, H, W) → (B, embedding_size, H / 4, W / 4).</summary>
    public override Tensor forward(Tensor pixels)
    {
        if (pixels.dim() != 4 || pixels.shape[1] != _channels)
        {
            throw new ArgumentException($"ResNet expects pixel_values of shape (batch, {_channels}, height, width), got [{string.Join(", ", pixels.shape)}].");
        }
        using var scope = torch.NewDisposeScope();
        var embedded = embedder.call(pixels);
        return nn.functional.max_pool2d(embedded, kernel_size: 3, stride: 2, padding: 1).MoveToOuterDisposeScope();
    }
}
