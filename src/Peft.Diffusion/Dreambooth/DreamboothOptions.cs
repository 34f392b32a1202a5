namespace Peft.Diffusion.Dreambooth;

/// <summary>
/// The knobs of diffusers' <c>train_dreambooth_lora.py</c> this trainer implements (its argument names in brackets).
/// </summary>
public sealed record DreamboothOptions
{
    /// <summary>Optimizer steps (<c>--max_train_steps</c>).</summary>
    public int Steps { get; init; } = 400;

    /// <summary>AdamW learning rate, constant (<c>--learning_rate</c>, <c>--lr_scheduler constant</c>).</summary>
    public double LearningRate { get; init; } = 1e-4;

    /// <summary>Instance images per step (<c>--train_batch_size</c>); with prior preservation as many class images join them.</summary>
    public int BatchSize { get; init; } = 1;

    /// <summary>Add the class images' loss, weighted by <see cref="PriorLossWeight"/> (<c>--with_prior_preservation</c>).</summary>
    public bool WithPriorPreservation { get; init; }

    /// <summary>Weight of the class loss (<c>--prior_loss_weight</c>).</summary>
    public double PriorLossWeight { get; init; } = 1.0;

    /// <summary>Gradient-norm clip (<c>--max_grad_norm</c>).</summary>
    public double MaxGradNorm { get; init; } = 1.0;

    /// <summary>AdamW weight decay (<c>--adam_weight_decay</c>).</summary>
    public double WeightDecay { get; init; } = 1e-2;

    /// <summary>Seeds torch's generator for the noise, timesteps and image order (<c>--seed</c>).</summary>
    public int Seed { get; init; }

    /// <summary>Refuses values that cannot train, naming the option.</summary>
    /// <exception cref="ArgumentException">A value is out of range.</exception>
    public void Validate()
    {
        if (Steps < 1) throw new ArgumentException($"Steps must be at least 1 (got {Steps}).");
        if (BatchSize < 1) throw new ArgumentException($"BatchSize must be at least 1 (got {BatchSize}).");
        if (!(LearningRate > 0)) throw new ArgumentException($"LearningRate must be positive (got {LearningRate}).");
        if (PriorLossWeight < 0) throw new ArgumentException($"PriorLossWeight must not be negative (got {PriorLossWeight}).");
        if (!(MaxGradNorm > 0)) throw new ArgumentException($"MaxGradNorm must be positive (got {MaxGradNorm}).");
    }
}
