using Peft.Diffusion.Schedulers;
using TorchSharp;
using static TorchSharp.torch;

namespace Peft.Tests.Diffusion;

/// <summary>The DDPM training schedule and the DDIM sampler against values computed here from diffusers' formulas.</summary>
public class SchedulerTests
{
    private static readonly NoiseScheduleConfig StableDiffusion = new()
    {
        BetaSchedule = "scaled_linear", BetaStart = 0.00085, BetaEnd = 0.012, StepsOffset = 1, ClipSample = false, SetAlphaToOne = false,
    };

    private static double[] HandBetas(NoiseScheduleConfig config)
    {
        var n = config.NumTrainTimesteps;
        return Enumerable.Range(0, n).Select(i =>
        {
            if (config.BetaSchedule == "linear") return config.BetaStart + (config.BetaEnd - config.BetaStart) * i / (n - 1);
            var root = Math.Sqrt(config.BetaStart) + (Math.Sqrt(config.BetaEnd) - Math.Sqrt(config.BetaStart)) * i / (n - 1);
            return root * root;
        }).ToArray();
    }

    private static double HandAlphaCumprod(double[] betas, int t)
    {
        var product = 1.0;
        for (int s = 0; s <= t; s++) product *= 1 - betas[s];
        return product;
    }

    [Theory]
    [InlineData("scaled_linear", 0.00085, 0.012)]
    [InlineData("linear", 0.0001, 0.02)]
    public void BetasAndAlphasCumprodFollowTheSchedule(string schedule, double start, double end)
    {
        var config = new NoiseScheduleConfig { BetaSchedule = schedule, BetaStart = start, BetaEnd = end };
        using var table = new NoiseSchedule(config);
        var betas = HandBetas(config);
        foreach (var t in new[] { 0, 1, 250, 500, 998, 999 })
        {
            Assert.Equal(betas[t], table.Betas[t].item<float>(), betas[t] * 1e-5);
            var cumprod = HandAlphaCumprod(betas, t);
            // float32 cumulative product over up to 1000 factors, as diffusers computes it: a relative 1e-4 bound.
            Assert.Equal(cumprod, table.AlphaCumprod(t), cumprod * 1e-4);
        }
        Assert.Equal(start, table.Betas[0].item<float>(), start * 1e-5);
        Assert.Equal(end, table.Betas[999].item<float>(), end * 1e-5);
    }

    [Fact]
    public void UnsupportedScheduleOptionsAreRefusedByName()
    {
        Assert.Contains("beta_schedule", Assert.Throws<ArgumentException>(() => new NoiseSchedule(new NoiseScheduleConfig { BetaSchedule = "squaredcos_cap_v2" })).Message);
        Assert.Contains("prediction_type", Assert.Throws<ArgumentException>(() => new NoiseSchedule(new NoiseScheduleConfig { PredictionType = "flow" })).Message);
        Assert.Contains("timestep_spacing", Assert.Throws<ArgumentException>(() => new NoiseSchedule(new NoiseScheduleConfig { TimestepSpacing = "karras" })).Message);
        var thresholding = System.Text.Json.JsonSerializer.Deserialize<NoiseScheduleConfig>("{\"thresholding\": true}")!;
        Assert.Contains("thresholding", Assert.Throws<ArgumentException>(() => thresholding.Validate()).Message);
    }

    [Fact]
    public void AddNoiseMixesSampleAndNoiseByAlphasCumprod()
    {
        using var scope = torch.NewDisposeScope();
        using var ddpm = new DdpmScheduler(StableDiffusion);
        var betas = HandBetas(StableDiffusion);
        torch.manual_seed(1);
        var sample = torch.randn(2, 3, 4, 4);
        var noise = torch.randn(2, 3, 4, 4);
        var timesteps = torch.tensor(new long[] { 0, 700 });
        var noisy = ddpm.AddNoise(sample, noise, timesteps);
        for (int b = 0; b < 2; b++)
        {
            var a = HandAlphaCumprod(betas, b == 0 ? 0 : 700);
            var expected = Math.Sqrt(a) * sample[b] + Math.Sqrt(1 - a) * noise[b];
            Assert.True((noisy[b] - expected).abs().max().item<float>() < 1e-5);
        }
        // epsilon training predicts the noise; v-prediction √ᾱ·ε − √(1 − ᾱ)·x₀.
        Assert.Equal(0.0, (ddpm.Target(sample, noise, timesteps) - noise).abs().max().item<float>());
        using var v = new DdpmScheduler(StableDiffusion with { PredictionType = "v_prediction" });
        var a700 = HandAlphaCumprod(betas, 700);
        var velocity = v.Target(sample, noise, timesteps)[1];
        Assert.True((velocity - (Math.Sqrt(a700) * noise[1] - Math.Sqrt(1 - a700) * sample[1])).abs().max().item<float>() < 1e-5);
        var drawn = ddpm.SampleTimesteps(500);
        Assert.True(drawn.min().item<long>() >= 0 && drawn.max().item<long>() < 1000);
    }

    [Fact]
    public void DdimLeadingSpacingAddsTheStepsOffset()
    {
        using var ddim = new DdimScheduler(StableDiffusion);
        ddim.SetTimesteps(50);
        // leading: (arange(50) · (1000 // 50)) reversed, + steps_offset 1.
        Assert.Equal(Enumerable.Range(0, 50).Select(i => 20L * i + 1).Reverse(), ddim.Timesteps);
        Assert.Equal(981L, ddim.Timesteps[0]);
        ddim.SetTimesteps(3);
        Assert.Equal([667L, 334, 1], ddim.Timesteps);
    }

    [Fact]
    public void DdimTrailingAndLinspaceSpacingsRoundAsNumpy()
    {
        using var trailing = new DdimScheduler(StableDiffusion with { TimestepSpacing = "trailing" });
        trailing.SetTimesteps(3);
        // round(arange(1000, 0, −333.33)) − 1 = [999, 666, 332] (666.67 → 667, 333.33 → 333).
        Assert.Equal([999L, 666, 332], trailing.Timesteps);
        using var linspace = new DdimScheduler(StableDiffusion with { TimestepSpacing = "linspace" });
        linspace.SetTimesteps(4);
        // round(linspace(0, 999, 4)) reversed = [999, 666, 333, 0].
        Assert.Equal([999L, 666, 333, 0], linspace.Timesteps);
        Assert.Throws<ArgumentOutOfRangeException>(() => linspace.SetTimesteps(1001));
    }

    [Fact]
    public void DdimStepWithTheTrueNoiseLandsOnTheNoisedSampleOfThePreviousTimestep()
    {
        using var scope = torch.NewDisposeScope();
        using var ddim = new DdimScheduler(StableDiffusion);
        var betas = HandBetas(StableDiffusion);
        ddim.SetTimesteps(10);
        torch.manual_seed(2);
        var clean = torch.randn(1, 4, 4, 4);
        var noise = torch.randn(1, 4, 4, 4);
        var (t, previous) = (ddim.Timesteps[0], ddim.Timesteps[1]);
        Assert.Equal(t - 100, previous);
        var at = HandAlphaCumprod(betas, (int)t);
        var sample = Math.Sqrt(at) * clean + Math.Sqrt(1 - at) * noise;
        // η = 0 and an exact ε: x_prev = √ᾱ_prev·x₀ + √(1 − ᾱ_prev)·ε.
        var ap = HandAlphaCumprod(betas, (int)previous);
        var expected = Math.Sqrt(ap) * clean + Math.Sqrt(1 - ap) * noise;
        Assert.True((ddim.Step(noise, t, sample) - expected).abs().max().item<float>() < 1e-4);
        // The last step goes to ᾱ₀ (set_alpha_to_one false) or 1: with 1 it returns the predicted clean sample.
        using var toOne = new DdimScheduler(StableDiffusion with { SetAlphaToOne = true });
        toOne.SetTimesteps(10);
        var a1 = HandAlphaCumprod(betas, 1);
        var last = toOne.Step(noise, 1, Math.Sqrt(a1) * clean + Math.Sqrt(1 - a1) * noise);
        Assert.True((last - clean).abs().max().item<float>() < 1e-4);
    }
}
