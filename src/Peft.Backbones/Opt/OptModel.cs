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
/// Its adapter slots depend on the config (<c>project_in</c>/<c>project_out</c> exist only when
/// word_embed_proj_dim ≠ hidden_size), so <see cref="IModuleSlots"/> is written by hand here
/// rather than generated from a fixed <c>[TargetModules]</c> list.
/// </remarks>
public sealed class OptDecoder : nn.Module, IModuleSlots
{
    private nn.Module<Tensor, Tensor> embed_tokens;
    private readonly Embedding embed_positions;
    private nn.Module<Tensor, Tensor>? project_out;
    private nn.Module<Tensor, Tensor>? project_in;
    private readonly LayerNorm? final_layer_norm;
    private readonly ModuleList<OptDecoderLayer> layers;

    private readonly string[] _slotNames;

    /// <summary>A randomly initialised decoder of the config's sizes.</summary>
    public OptDecoder(OptConfig config) : base("OPTDecoder")
    {
        Config = config;
        embed_tokens = Embeddings.Create(config.VocabSize, config.WordEmbedProjDim, config.PadTokenId);
        embed_positions = nn.Embedding(config.MaxPositionEmbeddings + OptConfig.PositionOffset, config.HiddenSize);
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
        _slotNames = project_in is null ? ["embed_tokens"] : ["embed_tokens", "project_out", "project_in"];
        RegisterComponents();
    }

    /// <summary>The config the decoder was built from.</summary>
    public OptConfig Config { get; }

    /// <summary>The token embedding (possibly wrapped by an adapter).</summary>
    public nn.Module<Tensor, Tensor> TokenEmbedding => embed_tokens;

    /// <inheritdoc />
    public IReadOnlyList<string> SlotNames => _slotNames;

    /// <inheritdoc />
    public nn.Module<Tensor, Tensor> GetSlot(string name) => name switch
    {
        "embed_tokens" => embed_tokens,
        "project_out" when project_out is not null => project_out,
        "project_in" when project_in is not null => project_in,
        _ => throw new ArgumentException($"OPTDecoder has no adapter slot '{name}'.", nameof(name)),
    };

    /// <inheritdoc />
    public void ReplaceSlot(string name, nn.Module<Tensor, Tensor> module)
    {
        switch (name)
        {
            case "embed_tokens":
                embed_tokens = module;
                break;
            case "project_out" when project_out is not null:
                project_out = module;
                break;
            case "project_in" when project_in is not null:
                project_in = module;
                break;
            default:
                throw new ArgumentException($"OPTDecoder has no adapter slot '{name}'.", nameof(name));
        }
        _internal_submodules[name] = module;
    }

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
            hidden = layers[i].forward(hidden, mask, cache, i);
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
