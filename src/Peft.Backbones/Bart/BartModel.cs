// BART encoder, decoder and bare model, following transformers' models/bart/modeling_bart.py.
using Peft.Modeling;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Peft.Backbones.Bart;

/// <summary>
/// The encoder: scaled token embeddings plus learned positions (offset 2), <c>layernorm_embedding</c>, layers.
/// Its <c>embed_tokens</c> is a module of its own over the model's <c>shared</c> weight, as transformers 5 ties it.
/// </summary>
[TargetModules("embed_tokens", "layernorm_embedding")]
public sealed partial class BartEncoder : nn.Module, IGradientCheckpointing
{
    /// <summary>Rows the learned position tables keep before position 0 (BART's historical offset).</summary>
    public const int PositionOffset = 2;

    private nn.Module<Tensor, Tensor> embed_tokens;
    private readonly Embedding embed_positions;
    private readonly ModuleList<BartEncoderLayer> layers;
    private nn.Module<Tensor, Tensor> layernorm_embedding;
    private readonly Dropout dropout;
    private readonly double _embedScale;

    /// <summary>An encoder of the config's sizes whose <c>embed_tokens</c> shares <paramref name="shared"/>'s weight.</summary>
    public BartEncoder(BartConfig config, Embedding shared) : base(nameof(BartEncoder))
    {
        embed_tokens = Peft.Layers.Embeddings.Tied(shared);
        _embedScale = config.EmbedScale;
        embed_positions = Peft.Layers.Embeddings.Create(config.MaxPositionEmbeddings + PositionOffset, config.DModel);
        layers = nn.ModuleList(Enumerable.Range(0, config.EncoderLayers).Select(_ => new BartEncoderLayer(config)).ToArray());
        layernorm_embedding = nn.LayerNorm(config.DModel);
        dropout = nn.Dropout(config.Dropout);
        RegisterComponents();
    }

    /// <summary>Encodes token ids or (already scaled) embeddings into (B, S, C).</summary>
    public Tensor forward(Tensor? inputIds, Tensor? inputsEmbeds, Tensor? attentionMask)
    {
        using var scope = torch.NewDisposeScope();
        var embeds = inputsEmbeds ?? ScaledEmbeddings.Embed(embed_tokens, inputIds ?? throw new ArgumentException("The BART encoder needs input ids or embeddings."), _embedScale);
        var positions = torch.arange(PositionOffset, PositionOffset + embeds.shape[1], ScalarType.Int64, embeds.device);
        var hidden = dropout.call(layernorm_embedding.call(embeds + embed_positions.call(positions)));
        var mask = AttentionMasks.Padding(attentionMask, hidden.dtype);
        foreach (var layer in layers) hidden = GradientCheckpoint.Run(GradientCheckpointing, training, (x, e) => layer.forward(x, e[0]), hidden, null, mask);
        return hidden.MoveToOuterDisposeScope();
    }

    /// <inheritdoc />
    public bool GradientCheckpointing { get; set; }
}

/// <summary>The decoder: like the encoder's embeddings, then causal layers with cross-attention.</summary>
[TargetModules("embed_tokens", "layernorm_embedding")]
public sealed partial class BartDecoder : nn.Module, IGradientCheckpointing
{
    private nn.Module<Tensor, Tensor> embed_tokens;
    private readonly Embedding embed_positions;
    private readonly ModuleList<BartDecoderLayer> layers;
    private nn.Module<Tensor, Tensor> layernorm_embedding;
    private readonly Dropout dropout;
    private readonly double _embedScale;

    /// <summary>A decoder of the config's sizes whose <c>embed_tokens</c> shares <paramref name="shared"/>'s weight.</summary>
    public BartDecoder(BartConfig config, Embedding shared) : base(nameof(BartDecoder))
    {
        embed_tokens = Peft.Layers.Embeddings.Tied(shared);
        _embedScale = config.EmbedScale;
        embed_positions = Peft.Layers.Embeddings.Create(config.MaxPositionEmbeddings + BartEncoder.PositionOffset, config.DModel);
        layers = nn.ModuleList(Enumerable.Range(0, config.DecoderLayers).Select(_ => new BartDecoderLayer(config)).ToArray());
        layernorm_embedding = nn.LayerNorm(config.DModel);
        dropout = nn.Dropout(config.Dropout);
        RegisterComponents();
    }

    /// <summary>Number of layers.</summary>
    public int LayerCount => layers.Count;

    /// <inheritdoc />
    public bool GradientCheckpointing { get; set; }

    /// <summary>Decodes (B, T) ids or embeddings after the cached (or prefix) positions into (B, T, C).</summary>
    public Tensor forward(StackInputs inputs)
    {
        using var scope = torch.NewDisposeScope();
        var (cache, crossCache) = (inputs.Cache, inputs.CrossCache);
        var encoderHidden = inputs.EncoderHidden ?? throw new ArgumentException("The BART decoder needs the encoder's output.");
        if (cache is not null && cache.LayerCount < layers.Count)
        {
            throw new ArgumentException($"The key/value cache has {cache.LayerCount} layers; the BART decoder has {layers.Count}.");
        }
        var embeds = inputs.InputsEmbeds ?? ScaledEmbeddings.Embed(embed_tokens, inputs.InputIds ?? throw new ArgumentException("The BART decoder needs input ids or embeddings."), _embedScale);
        var (batch, length) = (embeds.shape[0], embeds.shape[1]);
        var past = cache?.Length ?? 0;
        var positions = torch.arange(past + BartEncoder.PositionOffset, past + BartEncoder.PositionOffset + length, ScalarType.Int64, embeds.device);
        var hidden = dropout.call(layernorm_embedding.call(embeds + embed_positions.call(positions)));

        var mask = AttentionMasks.Causal(inputs.AttentionMask, batch, length, past, hidden.dtype, hidden.device);
        var encoderMask = AttentionMasks.Padding(inputs.EncoderAttentionMask, hidden.dtype);
        for (int i = 0; i < layers.Count; i++)
        {
            // The encoder output is an input of every layer that needs its own gradient (the encoder's adapters).
            var (layer, index) = (layers[i], i);
            hidden = GradientCheckpoint.Run(GradientCheckpointing, training, (x, e) => layer.forward(x, e[0]!, e[1]!, e[2], cache, crossCache, index), hidden, cache ?? crossCache, mask, encoderHidden, encoderMask);
        }
        return hidden.MoveToOuterDisposeScope();
    }
}

/// <summary>The bare model (<c>model</c> in the heads): the shared embedding, and the encoder and decoder, whose own embeddings share its weight.</summary>
[TargetModules("shared")]
public sealed partial class BartModel : nn.Module
{
    private nn.Module<Tensor, Tensor> shared;
    private readonly BartEncoder encoder;
    private readonly BartDecoder decoder;

    /// <summary>A randomly initialised model of the config's sizes.</summary>
    public BartModel(BartConfig config) : base(nameof(BartModel))
    {
        Config = config;
        var embedding = Peft.Layers.Embeddings.Create(config.VocabSize, config.DModel, config.PadTokenId);
        shared = embedding;
        encoder = new BartEncoder(config, embedding);
        decoder = new BartDecoder(config, embedding);
        RegisterComponents();
    }

    /// <summary>The config the model was built from.</summary>
    public BartConfig Config { get; }

    /// <summary>The token embedding whose weight both stacks' <c>embed_tokens</c> share (possibly wrapped by an adapter, which the stacks do not see).</summary>
    public nn.Module<Tensor, Tensor> Shared => shared;

    /// <summary>The encoder.</summary>
    public BartEncoder Encoder => encoder;

    /// <summary>The decoder.</summary>
    public BartDecoder Decoder => decoder;
}
