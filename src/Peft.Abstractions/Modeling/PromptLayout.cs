namespace Peft.Modeling;

/// <summary>
/// What prompt-learning methods need from an architecture: how many layers take key/value
/// prefixes, how they are shaped, and how the token embedding is sized.
/// </summary>
/// <param name="LayerCount">Transformer layers (decoder layers for encoder-decoder models).</param>
/// <param name="AttentionHeads">Key/value heads per layer (for grouped-query attention, the key/value heads).</param>
/// <param name="HeadDim">Size of one head.</param>
/// <param name="HiddenSize">Token embedding size.</param>
/// <param name="IsEncoderDecoder">
/// True when the model has a separate encoder and decoder. As in the reference (transformers 5), prefix tuning's
/// prefixes enter only the decoder's self-attention, as <see cref="ModelInputs.PastKeyValues"/> with
/// <paramref name="LayerCount"/> layers; virtual tokens of prompt tuning go in front of the encoder input.
/// </param>
/// <param name="EncoderLayerCount">
/// Encoder layers, for encoder-decoder models: the reference's default <c>num_layers</c> for them (its
/// <c>num_hidden_layers</c>), which sizes the prefix table.
/// </param>
public sealed record PromptLayout(
    int LayerCount,
    int AttentionHeads,
    int HeadDim,
    int HiddenSize,
    bool IsEncoderDecoder = false,
    int EncoderLayerCount = 0);
