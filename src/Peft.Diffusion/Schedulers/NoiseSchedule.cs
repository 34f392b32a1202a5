// diffusers' schedulers/scheduling_ddpm.py (__init__): the β schedule and ᾱ_t = ∏(1 − β), computed in float32 as diffusers does.
using TorchSharp;
using static TorchSharp.torch;

namespace Peft.Diffusion.Schedulers;

/// <summary>The training noise schedule: β_t, α_t = 1 − β_t and the cumulative product ᾱ_t, one per training timestep.</summary>
public sealed class NoiseSchedule : IDisposable
{
    /// <summary>The schedule <paramref name="config"/> describes (validated).</summary>
    public NoiseSchedule(NoiseScheduleConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        config.Validate();
        Config = config;
        var n = config.NumTrainTimesteps;
        Betas = config.BetaSchedule == "scaled_linear"
            ? torch.linspace(Math.Sqrt(config.BetaStart), Math.Sqrt(config.BetaEnd), n, dtype: ScalarType.Float32).pow(2)
            : torch.linspace(config.BetaStart, config.BetaEnd, n, dtype: ScalarType.Float32);
        Betas.DetachFromDisposeScope();
        using var alphas = 1.0 - Betas;
        AlphasCumprod = torch.cumprod(alphas, 0).DetachFromDisposeScope();
    }

    /// <summary>The config.</summary>
    public NoiseScheduleConfig Config { get; }

    /// <summary>β_t, (num_train_timesteps), float32.</summary>
    public Tensor Betas { get; }

    /// <summary>ᾱ_t = ∏_{s ≤ t} (1 − β_s), (num_train_timesteps), float32.</summary>
    public Tensor AlphasCumprod { get; }

    /// <summary>ᾱ at <paramref name="timestep"/> as a double.</summary>
    public double AlphaCumprod(long timestep) => AlphasCumprod[timestep].item<float>();

    /// <inheritdoc />
    public void Dispose()
    {
        Betas.Dispose();
        AlphasCumprod.Dispose();
    }
}
