// diffusers' schedulers/scheduling_ddim.py: set_timesteps (leading / trailing / linspace spacing) and step.
using TorchSharp;
using static TorchSharp.torch;

namespace Peft.Diffusion.Schedulers;

/// <summary>
/// DDIM sampling over the training schedule: <see cref="SetTimesteps"/> picks the inference timesteps, <see cref="Step"/>
/// moves a sample from one to the previous: x₀ and ε from the model's output, then
/// x_prev = √ᾱ_prev·x₀ + √(1 − ᾱ_prev − σ²)·ε (+ σ·z), σ = η·√((1 − ᾱ_prev)/(1 − ᾱ_t)·(1 − ᾱ_t/ᾱ_prev)).
/// </summary>
public sealed class DdimScheduler : IDisposable
{
    private readonly double _finalAlphaCumprod;

    /// <summary>A sampler over the schedule <paramref name="config"/> describes.</summary>
    public DdimScheduler(NoiseScheduleConfig config)
    {
        Schedule = new NoiseSchedule(config);
        _finalAlphaCumprod = config.SetAlphaToOne ? 1.0 : Schedule.AlphaCumprod(0);
    }

    /// <summary>The β and ᾱ tables.</summary>
    public NoiseSchedule Schedule { get; }

    /// <summary>The inference timesteps, from the noisiest; empty until <see cref="SetTimesteps"/>.</summary>
    public IReadOnlyList<long> Timesteps { get; private set; } = [];

    /// <summary>The number of inference steps last set.</summary>
    public int NumInferenceSteps { get; private set; }

    /// <summary>Chooses <paramref name="steps"/> inference timesteps by the config's <c>timestep_spacing</c> (numpy's rounding: half to even).</summary>
    /// <exception cref="ArgumentOutOfRangeException">More steps than training timesteps, or fewer than one.</exception>
    public void SetTimesteps(int steps)
    {
        var config = Schedule.Config;
        var n = config.NumTrainTimesteps;
        if (steps < 1 || steps > n)
        {
            throw new ArgumentOutOfRangeException(nameof(steps), steps, $"num_inference_steps must be in [1, num_train_timesteps = {n}].");
        }
        NumInferenceSteps = steps;
        Timesteps = config.TimestepSpacing switch
        {
            "linspace" => Enumerable.Range(0, steps)
                .Select(i => (long)Math.Round(steps == 1 ? 0.0 : (n - 1) * (double)i / (steps - 1), MidpointRounding.ToEven)).Reverse().ToArray(),
            "trailing" => Trailing(n, steps),
            _ => Enumerable.Range(0, steps).Select(i => (long)i * (n / steps) + config.StepsOffset).Reverse().ToArray(),
        };
    }

    private static long[] Trailing(int n, int steps)
    {
        // numpy's arange(n, 0, −ratio): ceil(n / ratio) values n − i·ratio, each rounded half to even, minus one.
        var ratio = (double)n / steps;
        var count = (int)Math.Ceiling(n / ratio);
        return Enumerable.Range(0, count).Select(i => (long)Math.Round(n - i * ratio, MidpointRounding.ToEven) - 1).ToArray();
    }

    /// <summary>One DDIM step from <paramref name="timestep"/> to the previous inference timestep.</summary>
    /// <param name="modelOutput">The model's prediction (ε, v or x₀ as the config's <c>prediction_type</c>).</param>
    /// <param name="timestep">The current timestep (one of <see cref="Timesteps"/>).</param>
    /// <param name="sample">The current sample x_t.</param>
    /// <param name="eta">η: 0 is deterministic DDIM, 1 is DDPM-like noise.</param>
    /// <returns>x_prev.</returns>
    /// <exception cref="InvalidOperationException"><see cref="SetTimesteps"/> was not called.</exception>
    public Tensor Step(Tensor modelOutput, long timestep, Tensor sample, double eta = 0.0)
    {
        if (NumInferenceSteps == 0) throw new InvalidOperationException("Call SetTimesteps before Step.");
        using var scope = torch.NewDisposeScope();
        var config = Schedule.Config;
        var previous = timestep - config.NumTrainTimesteps / NumInferenceSteps;
        var alpha = Schedule.AlphaCumprod(timestep);
        var alphaPrev = previous >= 0 ? Schedule.AlphaCumprod(previous) : _finalAlphaCumprod;
        var beta = 1 - alpha;
        Tensor original, epsilon;
        switch (config.PredictionType)
        {
            case "epsilon":
                original = (sample - Math.Sqrt(beta) * modelOutput) / Math.Sqrt(alpha);
                epsilon = modelOutput;
                break;
            case "v_prediction":
                original = Math.Sqrt(alpha) * sample - Math.Sqrt(beta) * modelOutput;
                epsilon = Math.Sqrt(alpha) * modelOutput + Math.Sqrt(beta) * sample;
                break;
            default:
                original = modelOutput;
                epsilon = (sample - Math.Sqrt(alpha) * original) / Math.Sqrt(beta);
                break;
        }
        if (config.ClipSample) original = original.clamp(-config.ClipSampleRange, config.ClipSampleRange);
        var variance = (1 - alphaPrev) / beta * (1 - alpha / alphaPrev);
        var sigma = eta * Math.Sqrt(variance);
        var direction = Math.Sqrt(1 - alphaPrev - sigma * sigma) * epsilon;
        var prev = Math.Sqrt(alphaPrev) * original + direction;
        if (sigma > 0) prev = prev + sigma * torch.randn_like(modelOutput);
        return prev.MoveToOuterDisposeScope();
    }

    /// <inheritdoc />
    public void Dispose() => Schedule.Dispose();
}
