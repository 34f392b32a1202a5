// DeBERTa (v1) embeddings and encoder, following transformers' models/deberta/modeling_deberta.py.
using Peft.Modeling;
using TorchSharp;
using TorchSharp.Modules;
using TorchSharp.Utils;
using static TorchSharp.torch;

namespace Peft.Backbones.Deberta;

/// <summary>
/// Token embeddings, plus absolute positions when <c>position_biased_input</c>, plus token types
/// when <c>type_vocab_size</c> &gt; 0; projected to the hidden size if needed, normalised, and zeroed
/// at padding positions.
/// </summary>
[TargetModules("word_embeddings", "embed_proj", "LayerNorm")]
public sealed partial class DebertaEmbeddings : nn.Module
{
    private nn.Module<Tensor, Tensor> word_embeddings;
    private readonly Embedding? position_embeddings;
    private readonly Embedding? token_type_embeddings;
    private nn.Module<Tensor, Tensor>? embed_proj;
    [ComponentName(Name = "LayerNorm")] private nn.Module<Tensor, Tensor> layer_norm;
    private readonly Dropout dropout;

    /// <summary>Embeddings sized by the config, with <paramref name="layerNorm"/> as the normalisation (DeBERTa's or torch's).</summary>
    public DebertaEmbeddings(DebertaConfig config, nn.Module<Tensor, Tensor> layerNorm) : base("DebertaEmbeddings")
    {
        word_embeddings = Layers.Embeddings.Create(config.VocabSize, config.EmbeddingSize, config.PadTokenId);
        if (config.PositionBiasedInput) position_embeddings = Peft.Layers.Embeddings.Create(config.MaxPositionEmbeddings, config.EmbeddingSize);
        if (config.TypeVocabSize > 0) token_type_embeddings = Peft.Layers.Embeddings.Create(config.TypeVocabSize, config.EmbeddingSize);
        if (config.EmbeddingSize != config.HiddenSize) embed_proj = nn.Linear(config.EmbeddingSize, config.HiddenSize, hasBias: false);
        layer_norm = layerNorm;
        dropout = nn.Dropout(config.HiddenDropoutProb);
        RegisterComponents();
    }

    /// <summary>The token embedding (possibly wrapped by an adapter).</summary>
    public nn.Module<Tensor, Tensor> WordEmbeddings => word_embeddings;

    /// <summary>Embeds the inputs; <paramref name="mask"/> (B, T) zeroes padding positions.</summary>
    public Tensor forward(ModelInputs inputs, Tensor mask)
    {
        using var scope = torch.NewDisposeScope();
        var embeds = inputs.InputsEmbeds ?? word_embeddings.call(inputs.InputIds ?? throw new ArgumentException("DeBERTa needs input_ids or inputs_embeds."));
        var (batch, length) = (embeds.shape[0], embeds.shape[1]);
        var hidden = embeds;
        if (position_embeddings is not null)
        {
            var positions = inputs.PositionIds ?? torch.arange(length, device: embeds.device).unsqueeze(0);
            hidden = hidden + position_embeddings.call(positions.to(ScalarType.Int64));
        }
        if (token_type_embeddings is not null)
        {
            var types = inputs.TokenTypeIds ?? torch.zeros(batch, length, ScalarType.Int64, embeds.device);
            hidden = hidden + token_type_embeddings.call(types);
        }
        if (embed_proj is not null) hidden = embed_proj.call(hidden);
        hidden = layer_norm.call(hidden);
        hidden = hidden * mask.unsqueeze(2).to(hidden.dtype);
        return dropout.call(hidden).MoveToOuterDisposeScope();
    }
}

/// <summary>The layer stack with the shared relative-position embeddings.</summary>
public sealed class DebertaEncoder : nn.Module, IGradientCheckpointing
{
    private readonly ModuleList<DebertaLayer> layer;
    private readonly Embedding? rel_embeddings;

    /// <summary>Sized by the config.</summary>
    public DebertaEncoder(DebertaConfig config) : base(nameof(DebertaEncoder))
    {
        layer = nn.ModuleList(Enumerable.Range(0, config.NumHiddenLayers).Select(_ => new DebertaLayer(config)).ToArray());
        if (config.RelativeAttention) rel_embeddings = Peft.Layers.Embeddings.Create(config.MaxRelativePositions * 2, config.HiddenSize);
        RegisterComponents();
    }

    /// <summary>Runs the layers over <paramref name="hidden"/> (B, T, C) with the padding mask (B, T).</summary>
    public Tensor forward(Tensor hidden, Tensor mask)
    {
        using var scope = torch.NewDisposeScope();
        var pairs = DebertaMasks.QueryKey(mask);                                   // (B, 1, T, T)
        var length = hidden.shape[1];
        var relative = rel_embeddings is null ? null : RelativePositions.Build(length, length, hidden.device);
        var relEmbeddings = rel_embeddings?.weight;
        foreach (var block in layer)
        {
            // The relative-position embeddings are an input of every layer, with a gradient of their own when they train.
            hidden = GradientCheckpoint.Run(GradientCheckpointing, training, (x, e) => block.forward(x, e[0]!, e[1], e[2]), hidden, null, pairs, relative, relEmbeddings);
        }
        return hidden.MoveToOuterDisposeScope();
    }

    /// <inheritdoc />
    public bool GradientCheckpointing { get; set; }
}

/// <summary>The attention masks DeBERTa builds from a padding mask.</summary>
public static class DebertaMasks
{
    /// <summary>
    /// A padding mask (B, T) as DeBERTa uses it: a position attends to another only when both are real
    /// tokens, shaped (B, 1, T, T), boolean. A padding query attends to nothing (its scores are all the
    /// minimum, so its softmax is uniform, as in the reference).
    /// </summary>
    public static Tensor QueryKey(Tensor mask)
    {
        using var scope = torch.NewDisposeScope();
        var keep = mask.to(ScalarType.Bool);
        return keep[.., TensorIndex.None, TensorIndex.None, ..].logical_and(keep[.., TensorIndex.None, .., TensorIndex.None]).MoveToOuterDisposeScope();
    }

    /// <summary>The padding mask of <paramref name="inputs"/>, or all ones (B, T).</summary>
    public static Tensor PaddingOrOnes(ModelInputs inputs)
    {
        if (inputs.PastKeyValues is not null)
        {
            throw new NotSupportedException(
                "DeBERTa takes no past_key_values (the reference's model has no such input), so prefix tuning cannot drive it; use prompt tuning or P-tuning.");
        }
        if (inputs.AttentionMask is { } mask) return mask;
        var shape = inputs.InputIds?.shape ?? inputs.InputsEmbeds?.shape[..2] ?? throw new ArgumentException("DeBERTa needs input_ids or inputs_embeds.");
        var device = inputs.InputIds?.device ?? inputs.InputsEmbeds!.device;
        return torch.ones(shape, ScalarType.Int64, device);
    }
}

/// <summary>The bare DeBERTa model (<c>deberta</c> in every head): embeddings and encoder.</summary>
public sealed class DebertaModel : nn.Module, IDebertaEncoder
{
    private readonly DebertaEmbeddings embeddings;
    private readonly DebertaEncoder encoder;

    /// <summary>A randomly initialised model of the config's sizes.</summary>
    public DebertaModel(DebertaConfig config) : base(nameof(DebertaModel))
    {
        Config = config;
        embeddings = new DebertaEmbeddings(config, new DebertaLayerNorm(config.HiddenSize, config.LayerNormEps));
        encoder = new DebertaEncoder(config);
        RegisterComponents();
    }

    /// <summary>The config the model was built from.</summary>
    public DebertaConfig Config { get; }

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
