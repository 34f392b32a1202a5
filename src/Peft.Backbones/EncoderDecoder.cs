using Peft.Modeling;
using TorchSharp;
using static TorchSharp.torch;

namespace Peft.Backbones;

/// <summary>Plumbing the encoder-decoder heads share (transformers' <c>shift_tokens_right</c> and seq2seq loss).</summary>
internal static class EncoderDecoder
{
    /// <summary>
    /// Decoder inputs for teacher forcing: the labels moved one position right behind the start token,
    /// with ignored labels (-100) replaced by the padding id.
    /// </summary>
    public static Tensor ShiftTokensRight(Tensor labels, long padTokenId, long decoderStartTokenId)
    {
        using var scope = torch.NewDisposeScope();
        var start = torch.full(labels.shape[0], 1, decoderStartTokenId, ScalarType.Int64, labels.device);
        var shifted = torch.cat([start, labels[.., ..^1]], dim: 1);
        return shifted.masked_fill(shifted.eq(Losses.IgnoreIndex), padTokenId).MoveToOuterDisposeScope();
    }

    /// <summary>Cross-entropy of every decoder position against its label (no shift), -100 ignored; in float32 whatever the logits' dtype.</summary>
    public static Tensor Loss(Tensor logits, Tensor labels)
    {
        using var scope = torch.NewDisposeScope();
        var loss = nn.functional.cross_entropy(
            logits.to(ScalarType.Float32).reshape(-1, logits.shape[^1]),
            labels.reshape(-1).to(logits.device),
            ignore_index: Losses.IgnoreIndex);
        return loss.MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Checks that an encoder padding mask handed in with a precomputed encoder output covers exactly its positions
    /// (generation left-extends it for virtual tokens that prompt learning put in front of the encoder input).
    /// </summary>
    public static void CheckEncoderMask(Tensor? mask, Tensor encoderHidden)
    {
        if (mask is not null && mask.shape[1] != encoderHidden.shape[1])
        {
            throw new ArgumentException(
                $"attention_mask has {mask.shape[1]} positions but the given encoder output has {encoderHidden.shape[1]}.");
        }
    }
}

/// <summary>
/// What a stack of an encoder-decoder model runs on (as ML.NET GenAI's <c>DecoderLayerInput</c>): named,
/// so that the two masks and the two caches cannot trade places. The encoder reads the first three.
/// </summary>
public sealed record StackInputs
{
    /// <summary>Token ids, or null when <see cref="InputsEmbeds"/> is given.</summary>
    public Tensor? InputIds { get; init; }

    /// <summary>Embedded inputs, used as they are.</summary>
    public Tensor? InputsEmbeds { get; init; }

    /// <summary>Padding mask of these inputs (decoder: of past + new positions), or null.</summary>
    public Tensor? AttentionMask { get; init; }

    /// <summary>Encoder output (B, S, C) (decoder only).</summary>
    public Tensor? EncoderHidden { get; init; }

    /// <summary>Encoder padding mask (B, S), or null (decoder only).</summary>
    public Tensor? EncoderAttentionMask { get; init; }

    /// <summary>Decoder self-attention cache or prefixes; positions continue after its length.</summary>
    public KeyValueCache? Cache { get; init; }

    /// <summary>Decoder cross-attention keys/values.</summary>
    public KeyValueCache? CrossCache { get; init; }
}
