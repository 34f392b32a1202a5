using static TorchSharp.torch;

namespace Peft.Modeling;

/// <summary>The outputs of one forward pass.</summary>
public sealed record ModelOutputs
{
    /// <summary>Head output: vocabulary logits, class logits, or the last hidden state for feature extraction.</summary>
    public required Tensor Logits { get; init; }

    /// <summary>The loss, when labels were given.</summary>
    public Tensor? Loss { get; init; }

    /// <summary>The cache including this step, when the inputs asked for one.</summary>
    public KeyValueCache? PastKeyValues { get; init; }

    /// <summary>The decoder's cross-attention keys/values (encoder-decoder models), when the inputs asked for a cache.</summary>
    public KeyValueCache? CrossAttentionCache { get; init; }

    /// <summary>The encoder's output, for encoder-decoder models (reused across decoding steps).</summary>
    public Tensor? EncoderLastHiddenState { get; init; }
}
