using TorchSharp;
using static TorchSharp.torch;

namespace Peft.Modeling;

/// <summary>The losses transformers' heads compute, with the same reductions.</summary>
public static class Losses
{
    /// <summary>Label value that is left out of the loss.</summary>
    public const long IgnoreIndex = -100;

    /// <summary>Next-token loss: logits at position t predict labels at t + 1; mean over labels that are not ignored.</summary>
    public static Tensor CausalLM(Tensor logits, Tensor labels)
    {
        using var scope = torch.NewDisposeScope();
        var shifted = nn.functional.pad(labels, [0, 1], value: IgnoreIndex)[.., 1..];
        var loss = nn.functional.cross_entropy(
            logits.to(ScalarType.Float32).reshape(-1, logits.shape[^1]),
            shifted.reshape(-1).to(logits.device),
            ignore_index: IgnoreIndex);
        return loss.MoveToOuterDisposeScope();
    }

    /// <summary>Per-token classification loss (cross-entropy, ignored labels left out).</summary>
    public static Tensor TokenClassification(Tensor logits, Tensor labels) =>
        nn.functional.cross_entropy(logits.reshape(-1, logits.shape[^1]), labels.reshape(-1), ignore_index: IgnoreIndex);

    /// <summary>
    /// Semantic segmentation loss as transformers' segmentation heads compute it: the logits (B,
    /// labels, h, w) are upsampled bilinearly to the label map (B, H, W), then cross-entropy ignoring
    /// <paramref name="ignoreIndex"/>; with one label, binary cross-entropy averaged over every pixel
    /// with the ignored ones (and negative labels) counted as zero.
    /// </summary>
    public static Tensor SemanticSegmentation(Tensor logits, Tensor labels, int numLabels, long ignoreIndex)
    {
        using var scope = torch.NewDisposeScope();
        var upsampled = nn.functional.interpolate(logits, size: [labels.shape[^2], labels.shape[^1]], mode: InterpolationMode.Bilinear, align_corners: false);
        Tensor loss;
        if (numLabels > 1)
        {
            loss = nn.functional.cross_entropy(upsampled, labels.to(ScalarType.Int64), ignore_index: ignoreIndex);
        }
        else
        {
            var valid = labels.ge(0).logical_and(labels.ne(ignoreIndex)).to(upsampled.dtype);
            var perPixel = nn.functional.binary_cross_entropy_with_logits(upsampled.squeeze(1), labels.to(upsampled.dtype), reduction: nn.Reduction.None);
            loss = (perPixel * valid).mean();
        }
        return loss.MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Sequence classification loss as transformers chooses it: mean squared error for one label,
    /// cross-entropy for integer labels, binary cross-entropy with logits for float multi-labels.
    /// </summary>
    public static Tensor SequenceClassification(Tensor logits, Tensor labels, int numLabels)
    {
        if (numLabels == 1)
        {
            return nn.functional.mse_loss(logits.squeeze(), labels.to(logits.dtype).squeeze());
        }
        if (labels.dtype is ScalarType.Int64 or ScalarType.Int32)
        {
            return nn.functional.cross_entropy(logits.view(-1, numLabels), labels.view(-1));
        }
        return nn.functional.binary_cross_entropy_with_logits(logits, labels.to(logits.dtype));
    }
}
