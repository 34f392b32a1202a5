// OPT decoder stack, following transformers' models/opt/modeling_opt.py.
using Peft.Backbones.Shared;
using Peft.Layers;
using Peft.Modeling;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Peft.Backbones.Opt;

/// <summary>
/// The OPT decoder: token and learned position embeddings, optional projections between the
/// embedding size and the hidden size, the layers and the final norm.
/// </summary>
/// <remarks>
/// <c>project_in</c>/<c>project_out</c> exist only when word_embed_proj_dim ≠ hidden_size: nullable
/// fields, which are adapter slots only when the model has them.
/// </remarks>
[TargetModules("embed_tokens", "project_out", "project_in")]
public sealed partial class OptDecoder : nn.Module, IGradientCheckpointing
{
    private nn.Module<Tensor, Tensor> embed_tokens;
    private readonly Embedding embed_positions;
    private nn.Module<Tensor, Tensor>? project_out;
    private nn.Module<Tensor, Tensor>? project_in;
    private readonly LayerNorm? final_layer_norm;
    private readonly ModuleList<OptDecoderLayer> layers;

    /// <summary>A randomly initialised decoder of the config's sizes.</summary>
    public OptDecoder(OptConfig config) : base("OPTDecoder")
    {
        Config = config;
        embed_tokens = Embeddings.Create(config.VocabSize, config.WordEmbedProjDim, config.PadTokenId);
        embed_positions = Peft.Layers.Embeddings.Create(config.MaxPositionEmbeddings + OptConfig.PositionOffset, config.HiddenSize);
        if (config.WordEmbedProjDim != config.HiddenSize)
        {
            project_out = nn.Linear(config.HiddenSize, config.WordEmbedProjDim, hasBias: false);
            project_in = nn.Linear(config.WordEmbedProjDim, config.HiddenSize, hasBias: false);
        }
        if (config.DoLayerNormBefore && !config.RemoveFinalLayerNorm)
        {
            final_layer_norm = nn.LayerNorm(config.HiddenSize, elementwise_affine: config.LayerNormElementwiseAffine);
        }
        layers = nn.ModuleList(Enumerable.Range(0, config.NumHiddenLayers).Select(_ => new OptDecoderLayer(config)).ToArray());
        RegisterComponents();
    }

    /// <summary>The config the decoder was built from.</summary>
    public OptConfig Config { get; }

    /// <summary>The token embedding (possibly wrapped by an adapter).</summary>
    public nn.Module<Tensor, Tensor> TokenEmbedding => embed_tokens;

    /// <inheritdoc />
    public bool GradientCheckpointing { get; set; }

    /// <summary>Runs the decoder and returns the final hidden states (B, T, word_embed_proj_dim).</summary>
    public Tensor forward(ModelInputs inputs, KeyValueCache? cache)
    {
        using var scope = torch.NewDisposeScope();
        var embeds = inputs.InputsEmbeds ?? embed_tokens.call(inputs.InputIds ?? throw new ArgumentException("OPT needs input_ids or inputs_embeds."));
        var (batch, length) = (embeds.shape[0], embeds.shape[1]);
        var past = cache?.Length ?? 0;
        var padding = (inputs.AttentionMask ?? torch.ones(batch, past + length, ScalarType.Int64, embeds.device)).to(ScalarType.Int64, embeds.device);

        // Positions count attended tokens only (cumulative sum of the mask), so padding does not shift them.
        var positions = inputs.PositionIds
            ?? (padding.cumsum(1) * padding - 1)[.., (int)past..];
        var positionEmbeds = embed_positions.call(positions + OptConfig.PositionOffset);
        if (project_in is not null) embeds = project_in.call(embeds);
        var hidden = embeds + positionEmbeds;

        var mask = AttentionMasks.Causal(padding, batch, length, past, hidden.dtype, hidden.device);
        for (int i = 0; i < layers.Count; i++)
        {
            // LayerDrop skips whole layers at random in training, as the reference does.
            if (training && Config.LayerDrop > 0 && torch.rand(1).item<float>() < Config.LayerDrop) continue;
            var (layer, index) = (layers[i], i);
            hidden = GradientCheckpoint.Run(GradientCheckpointing, training, (x, e) => layer.forward(x, e[0]!, cache, index), hidden, cache, mask);
        }
        if (final_layer_norm is not null) hidden = final_layer_norm.call(hidden);
        if (project_out is not null) hidden = project_out.call(hidden);
        return hidden.MoveToOuterDisposeScope();
    }
}

/// <summary>The bare OPT model (<c>model</c> in every head), holding the <c>decoder</c>.</summary>
public sealed class OptModel : nn.Module, IDecoderStack
{
    private readonly OptDecoder decoder;

    /// <summary>A randomly initialised model of the config's sizes.</summary>
    public OptModel(OptConfig config) : base("OPTModel")
    {
        decoder = new OptDecoder(config);
        RegisterComponents();
    }

    /// <summary>The decoder.</summary>
    public OptDecoder Decoder => decoder;

    /// <inheritdoc />
    public nn.Module<Tensor, Tensor> TokenEmbedding => decoder.TokenEmbedding;

    /// <summary>Runs the decoder and returns the final hidden states.</summary>
    public Tensor forward(ModelInputs inputs, KeyValueCache? cache) => decoder.forward(inputs, cache);
}
