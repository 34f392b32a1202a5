// DeBERTa-v2 encoder, model and task heads, following transformers' models/deberta_v2/modeling_deberta_v2.py.
using Peft.Backbones.Deberta;
using Peft.Modeling;
using TorchSharp;
using TorchSharp.Modules;
using TorchSharp.Utils;
using static TorchSharp.torch;

namespace Peft.Backbones.DebertaV2;

/// <summary>
/// The layer stack with the shared relative-position embeddings (optionally layer-normalised, in
/// log buckets) and the optional convolution after the first layer.
/// </summary>
public sealed class DebertaV2Encoder : nn.Module, IGradientCheckpointing
{
    private readonly ModuleList<DebertaV2Layer> layer;
    private readonly Embedding? rel_embeddings;
    [ComponentName(Name = "LayerNorm")] private readonly LayerNorm? layer_norm;
    private readonly ConvLayer? conv;

    private readonly int _positionBuckets;
    private readonly int _maxRelativePositions;

    /// <summary>Sized by the config.</summary>
    public DebertaV2Encoder(DebertaV2Config config) : base(nameof(DebertaV2Encoder))
    {
        layer = nn.ModuleList(Enumerable.Range(0, config.NumHiddenLayers).Select(_ => new DebertaV2Layer(config)).ToArray());
        if (config.RelativeAttention)
        {
            _positionBuckets = config.PositionBuckets;
            _maxRelativePositions = config.MaxRelativePositions;
            rel_embeddings = Peft.Layers.Embeddings.Create(config.PosEbdSize * 2, config.HiddenSize);
        }
        if (config.NormalisesRelEmbeddings) layer_norm = nn.LayerNorm(config.HiddenSize, config.LayerNormEps);
        if (config.ConvKernelSize > 0) conv = new ConvLayer(config);
        RegisterComponents();
    }

    /// <summary>Runs the layers over <paramref name="hidden"/> (B, T, C) with the padding mask (B, T).</summary>
    public Tensor forward(Tensor hidden, Tensor mask)
    {
        using var scope = torch.NewDisposeScope();
        var pairs = DebertaMasks.QueryKey(mask);                                   // (B, 1, T, T)
        var length = hidden.shape[1];
        Tensor? relative = null;
        Tensor? relEmbeddings = null;
        if (rel_embeddings is not null)
        {
            relative = RelativePositions.Build(length, length, hidden.device, _positionBuckets, _maxRelativePositions);
            relEmbeddings = layer_norm is null ? rel_embeddings.weight : layer_norm.call(rel_embeddings.weight!);
        }
        var input = hidden;
        for (int i = 0; i < layer.Count; i++)
        {
            // The (normalised) relative-position embeddings are an input of every layer, with a gradient of their own
            // when they train; the convolution after the first layer is outside the checkpoint, as in transformers.
            var block = layer[i];
            hidden = GradientCheckpoint.Run(GradientCheckpointing, training, (x, e) => block.forward(x, e[0]!, e[1], e[2]), hidden, null, pairs, relative, relEmbeddings);
            if (i == 0 && conv is not null) hidden = conv.forward(input, hidden, mask);
        }
        return hidden.MoveToOuterDisposeScope();
    }

    /// <inheritdoc />
    public bool GradientCheckpointing { get; set; }
}

/// <summary>The bare DeBERTa-v2 model (<c>deberta</c> in every head): embeddings and encoder.</summary>
public sealed class DebertaV2Model : nn.Module, IDebertaEncoder
{
    private readonly DebertaEmbeddings embeddings;
    private readonly DebertaV2Encoder encoder;

    /// <summary>A randomly initialised model of the config's sizes.</summary>
    public DebertaV2Model(DebertaV2Config config) : base(nameof(DebertaV2Model))
    {
        Config = config;
        embeddings = new DebertaEmbeddings(config, nn.LayerNorm(config.HiddenSize, config.LayerNormEps));
        encoder = new DebertaV2Encoder(config);
        RegisterComponents();
    }

    /// <summary>The config the model was built from.</summary>
    public DebertaV2Config Config { get; }

    /// <summary>The token embedding (possibly wrapped by an adapter).</summary>
    public nn.Module<Tensor, Tensor> WordEmbeddings => embeddings.WordEmbeddings;

    /// <summary>The last hidden state (B, T, C).</summary>
    public Tensor forward(ModelInputs inputs)
    {
        using var scope = torch.NewDisposeScope();
        var mask = DebertaMasks.PaddingOrOnes(inputs);
        var hidden = embeddings.forward(inputs, mask);
        return encoder.forward(hidden, mask).MoveToOuterDisposeScope();
    }
}
