// The denoising loop of diffusers' StableDiffusionPipeline (__call__), with classifier-free guidance, over latents.
using Peft.Diffusion.Schedulers;
using Peft.Modeling;
using TorchSharp;
using static TorchSharp.torch;

namespace Peft.Diffusion.Sampling;

/// <summary>Generates latents (or pixels, for a pixel-space UNet) with DDIM from pure noise.</summary>
public static class DdimSampling
{
    /// <summary>
    /// Starts from Gaussian noise of <paramref name="shape"/> (seeded by <paramref name="seed"/>) and runs
    /// <paramref name="steps"/> DDIM steps; with <paramref name="unconditional"/> (the empty prompt's encoding) each
    /// prediction is uncond + <paramref name="guidanceScale"/> × (cond − uncond), as the pipeline's classifier-free guidance.
    /// </summary>
    /// <param name="unet">The denoiser (a UNet2DConditionModel, or a PeftModel over one).</param>
    /// <param name="scheduler">The DDIM sampler; its timesteps are set here.</param>
    /// <param name="context">The prompt's encoding, (1 or B, S, D).</param>
    /// <param name="shape">(B, C, H, W) of the result.</param>
    /// <param name="steps">Inference steps.</param>
    /// <param name="seed">Seeds the initial noise (and η's noise).</param>
    /// <param name="unconditional">The empty prompt's encoding for guidance, or null for none.</param>
    /// <param name="guidanceScale">Guidance weight with <paramref name="unconditional"/> (null: the pipeline's 7.5).</param>
    /// <param name="eta">DDIM's η (0: deterministic).</param>
    /// <exception cref="ArgumentException">A guidance scale without an unconditional encoding (it would be ignored).</exception>
    public static Tensor Generate(nn.Module<ModelInputs, ModelOutputs> unet, DdimScheduler scheduler, Tensor context, long[] shape, int steps, int seed,
        Tensor? unconditional = null, double? guidanceScale = null, double eta = 0.0)
    {
        ArgumentNullException.ThrowIfNull(unet);
        ArgumentNullException.ThrowIfNull(scheduler);
        ArgumentNullException.ThrowIfNull(context);
        if (unconditional is null && guidanceScale is not null)
        {
            throw new ArgumentException("guidanceScale needs the unconditional (empty prompt) encoding for classifier-free guidance.", nameof(guidanceScale));
        }
        var scale = guidanceScale ?? 7.5;
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        scheduler.SetTimesteps(steps);
        torch.manual_seed(seed);
        var batch = shape[0];
        var latents = torch.randn(shape, dtype: context.dtype, device: context.device);    // DDIM's init_noise_sigma is 1
        var cond = context.expand(batch, -1, -1);
        var both = unconditional is null ? cond : torch.cat([unconditional.expand(batch, -1, -1), cond], dim: 0);
        foreach (var t in scheduler.Timesteps)
        {
            using var stepScope = torch.NewDisposeScope();
            var input = unconditional is null ? latents : torch.cat([latents, latents], dim: 0);
            var prediction = unet.call(new ModelInputs { PixelValues = input, Timestep = torch.tensor(t), EncoderHiddenStates = both }).Logits;
            if (unconditional is not null)
            {
                var parts = prediction.chunk(2, dim: 0);
                prediction = parts[0] + scale * (parts[1] - parts[0]);
            }
            latents = scheduler.Step(prediction, t, latents, eta).MoveToOuterDisposeScope();
        }
        return latents.MoveToOuterDisposeScope();
    }
}
