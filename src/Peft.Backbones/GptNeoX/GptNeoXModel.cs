// GPT-NeoX decoder stack, following transformers' models/gpt_neox/modeling_gpt_neox.py.
using Peft.Backbones.Shared;
using Peft.Modeling;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Peft.Backbones.GptNeoX;

/// <summary>
/// One layer. With <c>use_parallel_residual</c>, attention and MLP each normalise the layer input and
/// both are added to it; without, the MLP runs on the attention's residual output (as GPT-2 does).
/// </summary>
[TargetModules("input_layernorm", "post_attention_layernorm")]
public sealed partial class GptNeoXLayer : nn.Module
{
    private nn.Module<Tensor, Tensor> input_layernorm;
    private nn.Module<Tensor, Tensor> post_attention_layernorm;
    private readonly Dropout post_attention_dropout;
    private readonly Dropout post_mlp_dropout;
    private readonly GptNeoXAttention attention;
    private readonly GptNeoXMlp mlp;
    private readonly bool _parallel;

    /// <summary>A layer sized by the config.</summary>
    public GptNeoXLayer(GptNeoXConfig config) : base("GPTNeoXLayer")
    {
        input_layernorm = nn.LayerNorm(config.HiddenSize, config.LayerNormEps);
        post_attention_layernorm = nn.LayerNorm(config.HiddenSize, config.LayerNormEps);
        post_attention_dropout = nn.Dropout(config.HiddenDropout);
        post_mlp_dropout = nn.Dropout(config.HiddenDropout);
        attention = new GptNeoXAttention(config);
        mlp = new GptNeoXMlp(config);
        _parallel = config.UseParallelResidual;
        RegisterComponents();
    }

    /// <summary>(B, T, C) → (B, T, C).</summary>
    public Tensor forward(Tensor hidden, Tensor mask, Tensor cos, Tensor sin, KeyValueCache? cache, int layerIndex)
    {
        using var scope = torch.NewDisposeScope();
        var attended = post_attention_dropout.call(attention.forward(input_layernorm.call(hidden), mask, cos, sin, cache, layerIndex));
        Tensor output;
        if (_parallel)
        {
            var fed = post_mlp_dropout.call(mlp.call(post_attention_layernorm.call(hidden)));
            output = fed + attended + hidden;
        }
        else
        {
            attended = attended + hidden;
            var fed = post_mlp_dropout.call(mlp.call(post_attention_layernorm.call(attended)));
            output = fed + attended;
        }
        return output.MoveToOuterDisposeScope();
    }
}

/// <summary>The bare GPT-NeoX model (<c>gpt_neox</c> in every head): token embedding, layers, final norm.</summary>
[TargetModules("embed_in", "final_layer_norm")]
public sealed partial class GptNeoXModel : nn.Module, IDecoderStack, IGradientCheckpointing
{
    private nn.Module<Tensor, Tensor> embed_in;
    private readonly Dropout emb_dropout;
    private readonly ModuleList<GptNeoXLayer> layers;
    private nn.Module<Tensor, Tensor> final_layer_norm;
    private readonly RotaryEmbedding rotary_emb;

    /// <summary>A randomly initialised model of the config's sizes.</summary>
    public GptNeoXModel(GptNeoXConfig config) : base("GPTNeoXModel")
    {
        Config = config;
        embed_in = Peft.Layers.Embeddings.Create(config.VocabSize, config.HiddenSize);
        emb_dropout = nn.Dropout(config.HiddenDropout);
        layers = nn.ModuleList(Enumerable.Range(0, config.NumHiddenLayers).Select(_ => new GptNeoXLayer(config)).ToArray());
        final_layer_norm = nn.LayerNorm(config.HiddenSize, config.LayerNormEps);
        rotary_emb = new RotaryEmbedding("GPTNeoXRotaryEmbedding", config.HeadDim, config.ResolveRope());
        RegisterComponents();
    }

    /// <summary>The config the model was built from.</summary>
    public GptNeoXConfig Config { get; }

    /// <summary>The token embedding (possibly wrapped by an adapter).</summary>
    public nn.Module<Tensor, Tensor> TokenEmbedding => embed_in;

    /// <inheritdoc />
    public bool GradientCheckpointing { get; set; }

    /// <summary>Runs the stack and returns the final hidden states (B, T, C).</summary>
    /// <param name="inputs">Ids or embeddings, padding mask (which may cover cached positions too), position ids.</param>
    /// <param name="cache">Earlier keys/values (generation cache or prefixes), appended to as the layers run.</param>
    public Tensor forward(ModelInputs inputs, KeyValueCache? cache)
    {
        using var scope = torch.NewDisposeScope();
        var hidden = inputs.InputsEmbeds ?? embed_in.call(inputs.InputIds ?? throw new ArgumentException("GPT-NeoX needs input_ids or inputs_embeds."));
        var (batch, length) = (hidden.shape[0], hidden.shape[1]);
        var past = cache?.Length ?? 0;
        var positions = inputs.PositionIds ?? torch.arange(past, past + length, device: hidden.device).unsqueeze(0);
        var (cos, sin) = rotary_emb.forward(positions, hidden.dtype);       // (B, T, rotary)
        hidden = emb_dropout.call(hidden);

        var mask = AttentionMasks.Causal(inputs.AttentionMask, batch, length, past, hidden.dtype, hidden.device);
        for (int i = 0; i < layers.Count; i++)
        {
            var (layer, index) = (layers[i], i);
            hidden = GradientCheckpoint.Run(GradientCheckpointing, training, (x, e) => layer.forward(x, e[0]!, e[1]!, e[2]!, cache, index), hidden, cache, mask, cos, sin);
        }
        return final_layer_norm.call(hidden).MoveToOuterDisposeScope();
    }
}
