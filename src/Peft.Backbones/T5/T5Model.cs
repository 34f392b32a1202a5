// T5 and mT5 blocks and stacks, following transformers' models/t5/modeling_t5.py.
using Peft.Modeling;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Peft.Backbones.T5;

/// <summary>Pre-norm self-attention with a residual connection.</summary>
[TargetModules("layer_norm")]
public sealed partial class T5LayerSelfAttention : nn.Module
{
    private readonly T5Attention SelfAttention;
    private nn.Module<Tensor, Tensor> layer_norm;
    private readonly Dropout dropout;

    /// <summary>The self-attention sub-layer of a block.</summary>
    public T5LayerSelfAttention(T5Config config, bool isDecoder, bool hasRelativeAttentionBias) : base(nameof(T5LayerSelfAttention))
    {
        SelfAttention = new T5Attention(config, isDecoder, hasRelativeAttentionBias);
        layer_norm = new T5LayerNorm(config.DModel, config.LayerNormEpsilon);
        dropout = nn.Dropout(config.DropoutRate);
        RegisterComponents();
    }

    /// <summary>(B, T, C) → (B, T, C), and the position bias for the next blocks.</summary>
    public (Tensor Hidden, Tensor PositionBias) forward(Tensor hidden, Tensor? mask, Tensor? positionBias, KeyValueCache? cache, int layerIndex)
    {
        using var scope = torch.NewDisposeScope();
        var (attention, bias) = SelfAttention.forward(layer_norm.call(hidden), mask, positionBias, null, cache, layerIndex);
        return ((hidden + dropout.call(attention)).MoveToOuterDisposeScope(), bias.MoveToOuterDisposeScope());
    }
}

/// <summary>Pre-norm cross-attention over the encoder output, with a residual connection.</summary>
[TargetModules("layer_norm")]
public sealed partial class T5LayerCrossAttention : nn.Module
{
    private readonly T5Attention EncDecAttention;
    private nn.Module<Tensor, Tensor> layer_norm;
    private readonly Dropout dropout;

    /// <summary>The cross-attention sub-layer of a decoder block.</summary>
    public T5LayerCrossAttention(T5Config config) : base(nameof(T5LayerCrossAttention))
    {
        EncDecAttention = new T5Attention(config, isDecoder: true, hasRelativeAttentionBias: false);
        layer_norm = new T5LayerNorm(config.DModel, config.LayerNormEpsilon);
        dropout = nn.Dropout(config.DropoutRate);
        RegisterComponents();
    }

    /// <summary>(B, T, C) attending to (B, S, C) → (B, T, C), and the (mask-only) bias for the next blocks.</summary>
    public (Tensor Hidden, Tensor PositionBias) forward(Tensor hidden, Tensor encoderHidden, Tensor? encoderMask, Tensor? positionBias, KeyValueCache? cache, int layerIndex)
    {
        using var scope = torch.NewDisposeScope();
        var (attention, bias) = EncDecAttention.forward(layer_norm.call(hidden), encoderMask, positionBias, encoderHidden, cache, layerIndex);
        return ((hidden + dropout.call(attention)).MoveToOuterDisposeScope(), bias.MoveToOuterDisposeScope());
    }
}

/// <summary>Pre-norm feed-forward block (plain or gated) with a residual connection.</summary>
[TargetModules("layer_norm")]
public sealed partial class T5LayerFF : nn.Module<Tensor, Tensor>
{
    private readonly nn.Module<Tensor, Tensor> DenseReluDense;
    private nn.Module<Tensor, Tensor> layer_norm;
    private readonly Dropout dropout;

    /// <summary>The feed-forward sub-layer of a block.</summary>
    public T5LayerFF(T5Config config) : base(nameof(T5LayerFF))
    {
        DenseReluDense = config.IsGatedAct ? new T5DenseGatedActDense(config) : new T5DenseActDense(config);
        layer_norm = new T5LayerNorm(config.DModel, config.LayerNormEpsilon);
        dropout = nn.Dropout(config.DropoutRate);
        RegisterComponents();
    }

    /// <inheritdoc />
    public override Tensor forward(Tensor hidden)
    {
        using var scope = torch.NewDisposeScope();
        return (hidden + dropout.call(DenseReluDense.call(layer_norm.call(hidden)))).MoveToOuterDisposeScope();
    }
}

/// <summary>What one block hands to the next: hidden states and the biases computed by the first block.</summary>
/// <param name="Hidden">Hidden states, (B, T, C).</param>
/// <param name="SelfBias">Self-attention position bias with the mask added.</param>
/// <param name="CrossBias">Cross-attention bias (the encoder mask), decoder only.</param>
public readonly record struct T5BlockState(Tensor Hidden, Tensor? SelfBias, Tensor? CrossBias);

/// <summary>
/// A block: <c>layer.0</c> self-attention, then (decoder) <c>layer.1</c> cross-attention, then the feed-forward layer.
/// </summary>
public sealed class T5Block : nn.Module
{
    private readonly ModuleList<nn.Module> layer;
    private readonly bool _isDecoder;

    /// <summary>An encoder or decoder block; the first block of a stack owns the relative position bias.</summary>
    public T5Block(T5Config config, bool isDecoder, bool hasRelativeAttentionBias) : base(nameof(T5Block))
    {
        _isDecoder = isDecoder;
        nn.Module[] layers = isDecoder
            ? [new T5LayerSelfAttention(config, true, hasRelativeAttentionBias), new T5LayerCrossAttention(config), new T5LayerFF(config)]
            : [new T5LayerSelfAttention(config, false, hasRelativeAttentionBias), new T5LayerFF(config)];
        layer = nn.ModuleList(layers);
        RegisterComponents();
    }

    /// <summary>Runs the block.</summary>
    /// <param name="state">Hidden states and the biases of the first block (null in the first block).</param>
    /// <param name="mask">Additive self-attention mask.</param>
    /// <param name="encoderHidden">Encoder output (decoder only).</param>
    /// <param name="encoderMask">Additive encoder padding mask (decoder only).</param>
    /// <param name="cache">Self-attention cache or prefixes.</param>
    /// <param name="crossCache">Projected encoder keys/values (decoder only).</param>
    /// <param name="layerIndex">This block's index.</param>
    public T5BlockState forward(T5BlockState state, Tensor? mask, Tensor? encoderHidden, Tensor? encoderMask, KeyValueCache? cache, KeyValueCache? crossCache, int layerIndex)
    {
        using var scope = torch.NewDisposeScope();
        var (hidden, selfBias) = ((T5LayerSelfAttention)layer[0]).forward(state.Hidden, mask, state.SelfBias, cache, layerIndex);
        Tensor? crossBias = state.CrossBias;
        if (_isDecoder && encoderHidden is not null)
        {
            (hidden, var bias) = ((T5LayerCrossAttention)layer[1]).forward(hidden, encoderHidden, encoderMask, crossBias, crossCache, layerIndex);
            crossBias = bias;
        }
        hidden = ((T5LayerFF)layer[^1]).call(hidden);
        return new T5BlockState(hidden.MoveToOuterDisposeScope(), selfBias.MoveToOuterDisposeScope(), crossBias?.MoveToOuterDisposeScope());
    }
}

/// <summary>
/// The encoder or the decoder (transformers' <c>T5Stack</c>). Its <c>embed_tokens</c> is a module of its own over
/// the model's <c>shared</c> weight, as transformers 5 ties it: LoRA or modules_to_save on <c>embed_tokens</c> adapts
/// each stack's embedding separately, and the checkpoint's single <c>shared.weight</c> loads all three.
/// </summary>
[TargetModules("embed_tokens", "final_layer_norm")]
public sealed partial class T5Stack : nn.Module, IGradientCheckpointing
{
    private nn.Module<Tensor, Tensor> embed_tokens;
    private readonly ModuleList<T5Block> block;
    private nn.Module<Tensor, Tensor> final_layer_norm;
    private readonly Dropout dropout;
    private readonly bool _isDecoder;

    /// <summary>A stack of the config's sizes.</summary>
    /// <param name="config">The model config.</param>
    /// <param name="isDecoder">Decoder: causal self-attention and cross-attention.</param>
    /// <param name="shared">The model's token embedding, whose weight this stack's <c>embed_tokens</c> shares.</param>
    public T5Stack(T5Config config, bool isDecoder, Embedding shared) : base(nameof(T5Stack))
    {
        _isDecoder = isDecoder;
        embed_tokens = Peft.Layers.Embeddings.Tied(shared);
        var count = isDecoder ? config.DecoderLayers : config.NumLayers;
        block = nn.ModuleList(Enumerable.Range(0, count).Select(i => new T5Block(config, isDecoder, hasRelativeAttentionBias: i == 0)).ToArray());
        final_layer_norm = new T5LayerNorm(config.DModel, config.LayerNormEpsilon);
        dropout = nn.Dropout(config.DropoutRate);
        RegisterComponents();
    }

    /// <summary>Number of blocks.</summary>
    public int LayerCount => block.Count;

    /// <inheritdoc />
    public bool GradientCheckpointing { get; set; }

    /// <summary>Runs the stack and returns its normalised output (B, T, C).</summary>
    public Tensor forward(StackInputs inputs)
    {
        using var scope = torch.NewDisposeScope();
        var (cache, crossCache) = (inputs.Cache, inputs.CrossCache);
        var embeds = inputs.InputsEmbeds ?? embed_tokens.call(inputs.InputIds ?? throw new ArgumentException($"The T5 {(_isDecoder ? "decoder" : "encoder")} needs input ids or embeddings."));
        var (batch, length) = (embeds.shape[0], embeds.shape[1]);
        if (cache is not null && cache.LayerCount < block.Count)
        {
            throw new ArgumentException($"The key/value cache has {cache.LayerCount} layers; the T5 decoder has {block.Count}.");
        }

        Tensor? mask, encoderMask = null;
        if (_isDecoder)
        {
            var past = cache?.Length ?? 0;
            mask = AttentionMasks.Causal(inputs.AttentionMask, batch, length, past, embeds.dtype, embeds.device);
            encoderMask = AttentionMasks.Padding(inputs.EncoderAttentionMask, embeds.dtype);
        }
        else
        {
            mask = AttentionMasks.Padding(inputs.AttentionMask, embeds.dtype);
        }

        var state = new T5BlockState(dropout.call(embeds), null, null);
        for (int i = 0; i < block.Count; i++)
        {
            // The biases the first block computes are inputs of the next blocks (they need a gradient when the relative
            // attention bias trains), and the encoder output is one of every decoder block.
            var (layer, index) = (block[i], i);
            var outputs = GradientCheckpoint.RunMany(GradientCheckpointing, training, x =>
            {
                var next = layer.forward(new T5BlockState(x[0]!, x[1], x[2]), x[3], x[4], x[5], cache, crossCache, index);
                return [next.Hidden, next.SelfBias, next.CrossBias];
            }, cache ?? crossCache, state.Hidden, state.SelfBias, state.CrossBias, mask, inputs.EncoderHidden, encoderMask);
            state = new T5BlockState(outputs[0]!, outputs[1], outputs[2]);
        }
        return dropout.call(final_layer_norm.call(state.Hidden)).MoveToOuterDisposeScope();
    }
}
