// Prefix tuning's encoder, following peft's tuners/prefix_tuning/model.py.
using Peft.PromptLearning;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Peft.Methods.PrefixTuning;

/// <summary>
/// The key/value prefixes of every layer, (virtual tokens, layers · 2 · token_dim): an embedding of
/// that width, or with <c>prefix_projection</c> an embedding of token_dim followed by
/// <c>transform</c> (Linear, Tanh, Linear). The reference's <c>PrefixEncoder</c>.
/// </summary>
public sealed class PrefixEncoder : PromptEncoder
{
#pragma warning disable IDE1006 // Hugging Face's module name
    private readonly Sequential? transform;
#pragma warning restore IDE1006

    /// <summary>An encoder sized by a resolved config.</summary>
    public PrefixEncoder(PrefixTuningConfig config)
        : base("PrefixEncoder", config.NumVirtualTokens!.Value, Width(config), config.InferenceMode)
    {
        Reparameterizes = config.PrefixProjection;
        var dim = config.TokenDim!.Value;
        var prefixWidth = config.NumLayers!.Value * 2L * dim;
        if (config.PrefixProjection && !config.InferenceMode)
        {
            var hidden = config.EncoderHiddenSize!.Value;
            transform = nn.Sequential(nn.Linear(dim, hidden), nn.Tanh(), nn.Linear(hidden, prefixWidth));
        }
        RegisterComponents();
        if (config.InitWeights == "zero")
        {
            using var noGrad = torch.no_grad();
            if (transform is not null)
            {
                var last = (Linear)transform[2];
                last.weight!.zero_();
                last.bias!.zero_();
            }
            else
            {
                embedding.weight!.zero_();
            }
        }
    }

    /// <inheritdoc />
    public override bool Reparameterizes { get; }

    private static long Width(PrefixTuningConfig config) =>
        config.PrefixProjection && !config.InferenceMode ? config.TokenDim!.Value : config.NumLayers!.Value * 2L * config.TokenDim!.Value;

    /// <inheritdoc />
    public override Tensor forward(Tensor indices)
    {
        using var scope = torch.NewDisposeScope();
        var prefixes = embedding.call(indices);
        if (transform is not null) prefixes = transform.call(prefixes);
        return prefixes.MoveToOuterDisposeScope();
    }

    /// <inheritdoc />
    public override void LoadPromptEmbeddings(Tensor saved, string source)
    {
        if (transform is not null)
        {
            throw new InvalidDataException(
                $"{source}: 'prompt_embeddings' holds the projected prefixes, which cannot be loaded into a trainable projection (prefix_projection = true with inference_mode = false). Load the adapter with inference_mode = true: its prefixes are then used as they are.");
        }
        base.LoadPromptEmbeddings(saved, source);
    }
}
