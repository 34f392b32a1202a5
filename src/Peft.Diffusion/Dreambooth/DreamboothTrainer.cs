// The training step of diffusers' examples/dreambooth/train_dreambooth_lora.py: noise the images at random timesteps,
// predict the noise, mean squared error; with prior preservation the batch holds instance and class images and the loss is
// instance + prior_loss_weight × class. Written for this library; not a port of the script's data pipeline.
using Peft.Diffusion.Schedulers;
using Peft.Modeling;
using TorchSharp;
using static TorchSharp.torch;

namespace Peft.Diffusion.Dreambooth;

/// <summary>
/// Dreambooth-style fine-tuning of a UNet (usually a <see cref="PeftModel"/> with LoRA on it) conditioned on a text
/// encoder's output. Whatever requires a gradient in either model trains: LoRA on the UNet, and on the text encoder too when
/// it is a <see cref="PeftModel"/> (diffusers' <c>--train_text_encoder</c>); a plain text encoder stays frozen.
/// </summary>
public static class DreamboothTrainer
{
    /// <summary>Trains for <see cref="DreamboothOptions.Steps"/> steps and returns each step's losses.</summary>
    /// <param name="unet">The denoiser: a UNet2DConditionModel or a PeftModel over one.</param>
    /// <param name="textEncoder">The text encoder (CLIP's): its output (<see cref="ModelOutputs.Logits"/>) is the UNet's context.</param>
    /// <param name="scheduler">The training noise schedule (its prediction_type sets the target).</param>
    /// <param name="data">Instance and class images and prompts.</param>
    /// <param name="options">Steps, learning rate, prior preservation.</param>
    /// <param name="cancellationToken">Stops between steps.</param>
    /// <exception cref="ArgumentException">Prior preservation without class images or prompt (or class data without it), or nothing to train.</exception>
    public static DreamboothResult Train(nn.Module<ModelInputs, ModelOutputs> unet, nn.Module<ModelInputs, ModelOutputs> textEncoder,
        DdpmScheduler scheduler, DreamboothData data, DreamboothOptions options, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(unet);
        ArgumentNullException.ThrowIfNull(textEncoder);
        ArgumentNullException.ThrowIfNull(scheduler);
        ArgumentNullException.ThrowIfNull(data);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        CheckPriorData(data, options);
        var parameters = unet.parameters().Concat(textEncoder.parameters()).Where(p => p.requires_grad).ToList();
        if (parameters.Count == 0) throw new ArgumentException("Nothing to train: no parameter of the UNet or the text encoder requires a gradient (attach an adapter with GetPeftModel).");
        var trainsText = textEncoder.parameters().Any(p => p.requires_grad);

        torch.manual_seed(options.Seed);
        using var optimizer = torch.optim.AdamW(parameters, lr: options.LearningRate, weight_decay: options.WeightDecay);
        unet.train();
        if (trainsText) textEncoder.train();
        var (losses, instanceLosses, priorLosses) = (new List<double>(), new List<double>(), new List<double>());
        for (int step = 0; step < options.Steps; step++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            using var scope = torch.NewDisposeScope();
            optimizer.zero_grad();
            var images = Batch(data.InstanceImages, options.BatchSize);
            var contexts = Encode(textEncoder, data.InstancePromptIds, trainsText).expand(images.shape[0], -1, -1);
            if (options.WithPriorPreservation)
            {
                var classImages = Batch(data.ClassImages!, options.BatchSize);
                images = torch.cat([images, classImages], dim: 0);
                contexts = torch.cat([contexts, Encode(textEncoder, data.ClassPromptIds!, trainsText).expand(classImages.shape[0], -1, -1)], dim: 0);
            }
            var noise = torch.randn_like(images);
            var timesteps = scheduler.SampleTimesteps(images.shape[0], images.device);
            var noisy = scheduler.AddNoise(images, noise, timesteps);
            var target = scheduler.Target(images, noise, timesteps);
            var prediction = unet.call(new ModelInputs { PixelValues = noisy, Timestep = timesteps, EncoderHiddenStates = contexts }).Logits;

            Tensor loss;
            if (options.WithPriorPreservation)
            {
                var half = prediction.shape[0] / 2;
                var instance = nn.functional.mse_loss(Precision.AtLeastFloat32(prediction[..(int)half]), Precision.AtLeastFloat32(target[..(int)half]));
                var prior = nn.functional.mse_loss(Precision.AtLeastFloat32(prediction[(int)half..]), Precision.AtLeastFloat32(target[(int)half..]));
                loss = instance + options.PriorLossWeight * prior;
                instanceLosses.Add(instance.ToDouble());
                priorLosses.Add(prior.ToDouble());
            }
            else
            {
                loss = nn.functional.mse_loss(Precision.AtLeastFloat32(prediction), Precision.AtLeastFloat32(target));
                instanceLosses.Add(loss.ToDouble());
            }
            loss.backward();
            nn.utils.clip_grad_norm_(parameters, options.MaxGradNorm);
            optimizer.step();
            losses.Add(loss.ToDouble());
        }
        unet.eval();
        textEncoder.eval();
        return new DreamboothResult(losses, instanceLosses, priorLosses);
    }

    /// <summary>
    /// The mean squared error of the UNet's prediction on <paramref name="images"/> over fixed, evenly spread timesteps and
    /// noise drawn from <paramref name="seed"/>: the same number for the same weights, so runs before and after training compare.
    /// </summary>
    public static double Evaluate(nn.Module<ModelInputs, ModelOutputs> unet, DdpmScheduler scheduler, Tensor images, Tensor context, int seed, int draws = 8)
    {
        ArgumentNullException.ThrowIfNull(unet);
        ArgumentNullException.ThrowIfNull(scheduler);
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        using var generator = new torch.Generator((ulong)seed);
        var total = 0.0;
        var n = scheduler.Schedule.Config.NumTrainTimesteps;
        for (int d = 0; d < draws; d++)
        {
            var noise = torch.randn(images.shape, generator: generator, dtype: images.dtype);
            var timesteps = torch.full([images.shape[0]], (long)((d + 0.5) * n / draws), dtype: ScalarType.Int64);
            var prediction = unet.call(new ModelInputs
            {
                PixelValues = scheduler.AddNoise(images, noise, timesteps),
                Timestep = timesteps,
                EncoderHiddenStates = context.expand(images.shape[0], -1, -1),
            }).Logits;
            total += nn.functional.mse_loss(Precision.AtLeastFloat32(prediction), Precision.AtLeastFloat32(scheduler.Target(images, noise, timesteps))).ToDouble();
        }
        return total / draws;
    }

    /// <summary>The text encoder's output for <paramref name="ids"/>, with gradients only when it trains.</summary>
    public static Tensor Encode(nn.Module<ModelInputs, ModelOutputs> textEncoder, Tensor ids, bool withGradient = false)
    {
        ArgumentNullException.ThrowIfNull(textEncoder);
        using var noGrad = withGradient ? null : torch.no_grad();
        return textEncoder.call(new ModelInputs { InputIds = ids }).Logits;
    }

    private static Tensor Batch(Tensor images, int size) => images[torch.randint(0, images.shape[0], [size], dtype: ScalarType.Int64)];

    private static void CheckPriorData(DreamboothData data, DreamboothOptions options)
    {
        var hasClassData = data.ClassImages is not null || data.ClassPromptIds is not null;
        if (options.WithPriorPreservation && (data.ClassImages is null || data.ClassPromptIds is null))
        {
            throw new ArgumentException("WithPriorPreservation needs ClassImages and ClassPromptIds (diffusers: --class_data_dir and --class_prompt).");
        }
        if (!options.WithPriorPreservation && hasClassData)
        {
            throw new ArgumentException("ClassImages or ClassPromptIds were given but WithPriorPreservation is false: they would be ignored; set it, or leave them out.");
        }
    }
}
