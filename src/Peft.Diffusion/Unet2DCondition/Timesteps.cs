// diffusers' models/embeddings.py: get_timestep_embedding and the Timesteps module (no parameters).
using TorchSharp;
using static TorchSharp.torch;

namespace Peft.Diffusion.Unet2DCondition;

/// <summary>The sinusoidal timestep embedding (<c>time_proj</c>): exp(−ln(10000)·i / (half − shift)) frequencies, sines then cosines.</summary>
public sealed class Timesteps : nn.Module<Tensor, Tensor>
{
    private readonly int _channels;
    private readonly bool _flipSinToCos;
    private readonly double _downscaleFreqShift;

    /// <summary>An embedding of <paramref name="channels"/> values per timestep.</summary>
    /// <param name="channels">Embedding width.</param>
    /// <param name="flipSinToCos">Cosines first (diffusers' <c>flip_sin_to_cos</c>).</param>
    /// <param name="downscaleFreqShift">diffusers' <c>freq_shift</c>.</param>
    public Timesteps(int channels, bool flipSinToCos, double downscaleFreqShift) : base(nameof(Timesteps))
    {
        _channels = channels;
        _flipSinToCos = flipSinToCos;
        _downscaleFreqShift = downscaleFreqShift;
    }

    /// <summary>(N) timesteps, possibly fractional → (N, channels) float32.</summary>
    public override Tensor forward(Tensor timesteps)
    {
        using var scope = torch.NewDisposeScope();
        var half = _channels / 2;
        var exponent = -Math.Log(10000) * torch.arange(0, half, dtype: ScalarType.Float32, device: timesteps.device) / (half - _downscaleFreqShift);
        var angles = timesteps.unsqueeze(1).to(ScalarType.Float32) * torch.exp(exponent).unsqueeze(0);   // (N, half)
        var embedding = _flipSinToCos
            ? torch.cat([angles.cos(), angles.sin()], dim: -1)
            : torch.cat([angles.sin(), angles.cos()], dim: -1);
        if (_channels % 2 == 1) embedding = nn.functional.pad(embedding, [0, 1, 0, 0]);
        return embedding.MoveToOuterDisposeScope();
    }
}
