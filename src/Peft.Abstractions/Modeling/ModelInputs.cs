using static TorchSharp.torch;

namespace Peft.Modeling;

/// <summary>
/// The inputs of one forward pass, named as transformers names them. Backbones read what applies
/// to them and ignore the rest; prompt-learning methods rewrite them (embeddings, masks, prefixes).
/// </summary>
public sealed record ModelInputs
{
    /// <summary>Token ids, (batch, seq). Null when <see cref="InputsEmbeds"/> is given.</summary>
    public Tensor? InputIds { get; init; }

    /// <summary>1 for real tokens, 0 for padding, (batch, seq) or (batch, past + seq).</summary>
    public Tensor? AttentionMask { get; init; }

    /// <summary>Embedded inputs, (batch, seq, hidden), used instead of <see cref="InputIds"/>.</summary>
    public Tensor? InputsEmbeds { get; init; }

    /// <summary>Explicit position ids, (batch, seq); derived from the cache length when null.</summary>
    public Tensor? PositionIds { get; init; }

    /// <summary>Targets: token ids for language models (-100 ignored), class ids for classifiers.</summary>
    public Tensor? Labels { get; init; }

    /// <summary>Decoder token ids for encoder-decoder models.</summary>
    public Tensor? DecoderInputIds { get; init; }

    /// <summary>Decoder padding mask for encoder-decoder models.</summary>
    public Tensor? DecoderAttentionMask { get; init; }

    /// <summary>Embedded decoder inputs for encoder-decoder models.</summary>
    public Tensor? DecoderInputsEmbeds { get; init; }

    /// <summary>Encoder output reused across decoding steps.</summary>
    public Tensor? EncoderHiddenStates { get; init; }

    /// <summary>Images, (batch, channels, height, width), for vision models.</summary>
    public Tensor? PixelValues { get; init; }

    /// <summary><see cref="PixelValues"/>, which a vision model cannot do without.</summary>
    /// <param name="model">The model asking ("ViT"), for the message.</param>
    /// <exception cref="ArgumentException">No pixel values were given.</exception>
    public Tensor RequirePixelValues(string model) =>
        PixelValues ?? throw new ArgumentException($"{model} needs pixel_values (batch, channels, height, width).");

    /// <summary>Diffusion timesteps, (batch) or a scalar for the whole batch, for denoising models (diffusers' UNet).</summary>
    public Tensor? Timestep { get; init; }

    /// <summary>Token bounding boxes, (batch, seq, 4), for layout models.</summary>
    public Tensor? Bbox { get; init; }

    /// <summary>Token type (segment) ids for encoders that use them.</summary>
    public Tensor? TokenTypeIds { get; init; }

    /// <summary>Keys and values of earlier positions (the KV cache, or prefix-tuning prefixes).</summary>
    public KeyValueCache? PastKeyValues { get; init; }

    /// <summary>Keys and values of earlier decoder cross-attention (encoder-decoder models).</summary>
    public KeyValueCache? CrossAttentionCache { get; init; }

    /// <summary>When true the model appends this step's keys and values to <see cref="PastKeyValues"/> (creating it if null).</summary>
    public bool UseCache { get; init; }
}
