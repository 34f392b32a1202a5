using static TorchSharp.torch;

namespace Peft.Diffusion.Unet2DCondition;

/// <summary>A down block of the UNet: its output and the skip connections it hands to the up blocks.</summary>
public interface IUNetDownBlock
{
    /// <summary>(B, C_in, H, W) → the output and one skip per ResNet (and one after the downsampler).</summary>
    (Tensor Hidden, IReadOnlyList<Tensor> Skips) Forward(Tensor hidden, Tensor temb, Tensor context, Tensor? contextMask);
}
