using static TorchSharp.torch;

namespace Peft.Diffusion.Dreambooth;

/// <summary>
/// What Dreambooth trains on: the subject's images with the instance prompt ("a photo of sks dog") and, for prior
/// preservation, images of the class with the class prompt ("a photo of dog"). Images are what the UNet denoises:
/// latents from a VAE (Stable Diffusion scales them by 0.18215), or pixels for a UNet whose in_channels are the image's.
/// </summary>
/// <param name="InstanceImages">(N, C, H, W) images of the subject.</param>
/// <param name="InstancePromptIds">(1, T) token ids of the instance prompt.</param>
/// <param name="ClassImages">(M, C, H, W) class images, or null without prior preservation.</param>
/// <param name="ClassPromptIds">(1, T) token ids of the class prompt, or null.</param>
public sealed record DreamboothData(Tensor InstanceImages, Tensor InstancePromptIds, Tensor? ClassImages = null, Tensor? ClassPromptIds = null);
