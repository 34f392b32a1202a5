using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Peft.Layers;

/// <summary>
/// A normalisation layer an architecture defines itself (an RMS norm, a float32 layer norm), so
/// that methods which copy norm layers (LN tuning) can copy it without knowing its class.
/// TorchSharp's <see cref="LayerNorm"/> needs no such marker.
/// </summary>
public interface INormLayer
{
    /// <summary>The number of features it normalises (the size of its weight).</summary>
    long Features { get; }

    /// <summary>A new layer of the same kind, sizes and epsilon; its parameters need not equal this one's.</summary>
    nn.Module<Tensor, Tensor> CreateLike();
}

/// <summary>Recognises and copies normalisation layers.</summary>
public static class NormLayers
{
    /// <summary>Whether <paramref name="module"/> is a norm layer: TorchSharp's LayerNorm or an <see cref="INormLayer"/>.</summary>
    public static bool IsNorm(nn.Module<Tensor, Tensor> module) => module is LayerNorm or INormLayer;

    /// <summary>The features a norm layer normalises.</summary>
    public static long FeaturesOf(nn.Module<Tensor, Tensor> module) => module switch
    {
        LayerNorm norm => norm.normalized_shape.Aggregate(1L, (a, b) => a * b),
        INormLayer norm => norm.Features,
        _ => throw new ArgumentException($"{module.GetType().Name} is not a norm layer.", nameof(module)),
    };

    /// <summary>
    /// An independent copy of a norm layer (the reference's <c>deepcopy</c>): same kind, sizes,
    /// epsilon, dtype and device, and parameters equal to the source's but not shared with it.
    /// </summary>
    public static nn.Module<Tensor, Tensor> Copy(nn.Module<Tensor, Tensor> source)
    {
        nn.Module<Tensor, Tensor> copy = source switch
        {
            LayerNorm norm => nn.LayerNorm(norm.normalized_shape, norm.eps, norm.elementwise_affine, bias: norm.bias is not null),
            INormLayer norm => norm.CreateLike(),
            _ => throw new ArgumentException($"{source.GetType().Name} is not a norm layer.", nameof(source)),
        };
        var sourceParameters = source.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        if (sourceParameters.Values.FirstOrDefault() is { } first)
        {
            copy.to(first.dtype);
            copy.to(first.device);
        }
        using var noGrad = torch.no_grad();
        foreach (var (name, parameter) in copy.named_parameters()) parameter.copy_(sourceParameters[name]);
        return copy;
    }
}
