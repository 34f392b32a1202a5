using static TorchSharp.torch;

namespace Peft.Diffusion.Unet2DCondition;

/// <summary>An up block of the UNet: each ResNet takes the output so far concatenated with one skip connection.</summary>
public interface IUNetUpBlock
{
    /// <summary>How many skip connections the block consumes (its ResNet count).</summary>
    int SkipCount { get; }

    /// <summary>
    /// (B, C, H, W) and <see cref="SkipCount"/> skips, consumed last first → the output, upsampled to
    /// <paramref name="upsampleSize"/> when the block has an upsampler.
    /// </summary>
    Tensor Forward(Tensor hidden, IReadOnlyList<Tensor> skips, Tensor temb, Tensor context, Tensor? contextMask, long[]? upsampleSize);
}
