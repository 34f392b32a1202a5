// Rotary position embeddings in the "rotate_half" layout, following transformers'
// modeling_rope_utils.py (default, linear and llama3 frequencies) and LlamaRotaryEmbedding /
// apply_rotary_pos_emb in models/llama/modeling_llama.py (partial rotation as in GPT-NeoX).
using TorchSharp;
using static TorchSharp.torch;

namespace Peft.Backbones.Shared;

/// <summary>
/// Computes the cosines and sines of rotary position embeddings for given position ids. Holds no
/// tensors (nothing to load or move): the frequencies are computed on the positions' device.
/// </summary>
public sealed class RotaryEmbedding : nn.Module
{
    private readonly RopeSettings _settings;

    /// <summary>Rotary embedding over the first <c>headDim × partial_rotary_factor</c> features of each head.</summary>
    /// <param name="name">The module's class name (<c>LlamaRotaryEmbedding</c>).</param>
    /// <param name="headDim">Size of one attention head.</param>
    /// <param name="settings">Resolved rope settings.</param>
    public RotaryEmbedding(string name, int headDim, RopeSettings settings) : base(name)
    {
        _settings = settings;
        Dim = (int)(headDim * settings.PartialRotaryFactor);
    }

    /// <summary>Rotated features per head.</summary>
    public int Dim { get; }

    /// <summary>The inverse frequencies (Dim / 2), in float32, as transformers computes them for the rope type.</summary>
    public Tensor InverseFrequencies(Device device)
    {
        using var scope = torch.NewDisposeScope();
        var exponents = torch.arange(0, Dim, 2, ScalarType.Int64, device).to(ScalarType.Float32) / Dim;
        var inverse = torch.tensor((float)_settings.Theta, device: device).pow(exponents).reciprocal();
        inverse = _settings.Type switch
        {
            "linear" => inverse / _settings.Factor,
            "llama3" => Llama3(inverse),
            _ => inverse,
        };
        return inverse.MoveToOuterDisposeScope();
    }

    private Tensor Llama3(Tensor inverse)
    {
        var s = _settings;
        var lowFreqWavelength = s.OriginalMaxPositions / s.LowFreqFactor;
        var highFreqWavelength = s.OriginalMaxPositions / s.HighFreqFactor;
        var wavelength = inverse.reciprocal() * (2 * Math.PI);
        var scaled = torch.where(wavelength > lowFreqWavelength, inverse / s.Factor, inverse);
        var smooth = (wavelength.reciprocal() * s.OriginalMaxPositions - s.LowFreqFactor) / (s.HighFreqFactor - s.LowFreqFactor);
        var smoothed = (1 - smooth) * scaled / s.Factor + smooth * scaled;
        var medium = wavelength.ge(highFreqWavelength).logical_and(wavelength.le(lowFreqWavelength));
        return torch.where(medium, smoothed, scaled);
    }

    /// <summary>Cosines and sines for <paramref name="positionIds"/> (B, T): each (B, T, Dim), in <paramref name="dtype"/>.</summary>
    public (Tensor Cos, Tensor Sin) forward(Tensor positionIds, ScalarType dtype)
    {
        using var scope = torch.NewDisposeScope();
        var inverse = InverseFrequencies(positionIds.device);
        var frequencies = positionIds.to(ScalarType.Float32).unsqueeze(-1) * inverse;        // (B, T, Dim / 2)
        var angles = torch.cat([frequencies, frequencies], dim: -1);                          // (B, T, Dim)
        return (angles.cos().to(dtype).MoveToOuterDisposeScope(), angles.sin().to(dtype).MoveToOuterDisposeScope());
    }

    /// <summary>
    /// Rotates the first <c>cos.shape[-1]</c> features of every head of <paramref name="x"/> (B, H, T, D)
    /// by the angles whose cosines and sines are given (B, T, R); the other features pass unchanged.
    /// </summary>
    public static Tensor Apply(Tensor x, Tensor cos, Tensor sin)
    {
        using var scope = torch.NewDisposeScope();
        cos = cos.unsqueeze(1);
        sin = sin.unsqueeze(1);
        var rotary = cos.shape[^1];
        var head = x.shape[^1];
        if (rotary == head) return (x * cos + RotateHalf(x) * sin).MoveToOuterDisposeScope();
        var rotated = x.narrow(-1, 0, rotary);
        var passed = x.narrow(-1, rotary, head - rotary);
        return torch.cat([rotated * cos + RotateHalf(rotated) * sin, passed], dim: -1).MoveToOuterDisposeScope();
    }

    /// <summary>(x1, x2) → (−x2, x1) over the two halves of the last axis.</summary>
    private static Tensor RotateHalf(Tensor x)
    {
        var half = x.shape[^1] / 2;
        return torch.cat([-x.narrow(-1, half, half), x.narrow(-1, 0, half)], dim: -1);
    }
}
