// diffusers' schedulers/scheduling_ddpm.py: add_noise and get_velocity, what training needs (this class does not sample).
using TorchSharp;
using static TorchSharp.torch;

namespace Peft.Diffusion.Schedulers;

/// <summary>
/// The forward (noising) process for training: x_t = √ᾱ_t·x₀ + √(1 − ᾱ_t)·ε, and the target the model learns for
/// the configured <c>prediction_type</c> (ε, v = √ᾱ·ε − √(1 − ᾱ)·x₀, or x₀).
/// </summary>
public sealed class DdpmScheduler : IDisposable
{
    /// <summary>A scheduler over the schedule <paramref name="config"/> describes.</summary>
    public DdpmScheduler(NoiseScheduleConfig config) => Schedule = new NoiseSchedule(config);

    /// <summary>The β and ᾱ tables.</summary>
    public NoiseSchedule Schedule { get; }

    /// <summary>Uniform random training timesteps in [0, num_train_timesteps), (batch), int64, from torch's generator.</summary>
    public Tensor SampleTimesteps(long batch, Device? device = null) =>
        torch.randint(0, Schedule.Config.NumTrainTimesteps, [batch], dtype: ScalarType.Int64, device: device);

    /// <summary>x_t = √ᾱ_t·<paramref name="original"/> + √(1 − ᾱ_t)·<paramref name="noise"/>, with ᾱ_t broadcast over all but the batch dimension.</summary>
    /// <param name="original">Clean samples (B, ...).</param>
    /// <param name="noise">Gaussian noise of the same shape.</param>
    /// <param name="timesteps">(B) int64 timesteps.</param>
    public Tensor AddNoise(Tensor original, Tensor noise, Tensor timesteps)
    {
        using var scope = torch.NewDisposeScope();
        var (signal, noiseScale) = Scales(original, timesteps);
        return (signal * original + noiseScale * noise).MoveToOuterDisposeScope();
    }

    /// <summary>v = √ᾱ_t·<paramref name="noise"/> − √(1 − ᾱ_t)·<paramref name="sample"/> (diffusers' get_velocity).</summary>
    public Tensor GetVelocity(Tensor sample, Tensor noise, Tensor timesteps)
    {
        using var scope = torch.NewDisposeScope();
        var (signal, noiseScale) = Scales(sample, timesteps);
        return (signal * noise - noiseScale * sample).MoveToOuterDisposeScope();
    }

    /// <summary>What the model should predict for <paramref name="original"/> noised with <paramref name="noise"/> at <paramref name="timesteps"/>.</summary>
    public Tensor Target(Tensor original, Tensor noise, Tensor timesteps) => Schedule.Config.PredictionType switch
    {
        "epsilon" => noise.alias(),
        "v_prediction" => GetVelocity(original, noise, timesteps),
        _ => original.alias(),
    };

    private (Tensor Signal, Tensor Noise) Scales(Tensor like, Tensor timesteps)
    {
        var cumprod = Schedule.AlphasCumprod.to(like.device)[timesteps.to(like.device)].to(like.dtype);       // (B)
        var shape = new long[like.dim()];
        Array.Fill(shape, 1L);
        shape[0] = -1;
        return (cumprod.sqrt().reshape(shape), (1 - cumprod).sqrt().reshape(shape));
    }

    /// <inheritdoc />
    public void Dispose() => Schedule.Dispose();
}
