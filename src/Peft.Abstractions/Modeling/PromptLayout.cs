namespace Peft.Modeling;

/// <summary>
/// What prompt-learning methods need from an architecture: how many layers take key/value
/// prefixes, how they are shaped, and how the token embedding is sized.
/// </summary>
/// <param name="LayerCount">Transformer layers (decoder layers for encoder-decoder models).</param>
/// <param name="AttentionHeads">Key/value heads per layer (for grouped-query attention, the key/value heads).</param>
/// <param name="HeadDim">Size of one head.</param>
/// <param name="HiddenSize">Token embedding size.</param>
/// <param name="IsEncoderDecoder">True when the model has a separate encoder and decoder (prefixes enter both).</param>
/// <param name="EncoderLayerCount">Encoder layers, for encoder-decoder models.</param>
public sealed record PromptLayout(
    int LayerCount,
    int AttentionHeads,
    int HeadDim,
    int HiddenSize,
    bool IsEncoderDecoder = false,
    int EncoderLayerCount = 0);
