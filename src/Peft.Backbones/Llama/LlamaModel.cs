// Llama decoder stack, following transformers' models/llama/modeling_llama.py.
using Peft.Backbones.Shared;
using Peft.Layers;
using Peft.Modeling;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Peft.Backbones.Llama;

/// <summary>One pre-norm decoder layer: RMSNorm → attention → residual, RMSNorm → MLP → residual.</summary>
[TargetModules("input_layernorm", "post_attention_layernorm")]
public sealed partial class LlamaDecoderLayer : nn.Module
{
    private readonly LlamaAttention self_attn;
    private readonly LlamaMlp mlp;
    private nn.Module<Tensor, Tensor> input_layernorm;
    private nn.Module<Tensor, Tensor> post_attention_layernorm;

    /// <summary>A layer sized by the config.</summary>
    public LlamaDecoderLayer(LlamaConfig config) : base("LlamaDecoderLayer")
    {
        self_attn = new LlamaAttention(config);
        mlp = new LlamaMlp(config);
        input_layernorm = new LlamaRmsNorm(config.HiddenSize, config.RmsNormEps);
        post_attention_layernorm = new LlamaRmsNorm(config.HiddenSize, config.RmsNormEps);
        RegisterComponents();
    }

    /// <summary>(B, T, C) → (B, T, C).</summary>
    public Tensor forward(Tensor hidden, Tensor mask, Tensor cos, Tensor sin, KeyValueCache? cache, int layerIndex)
    {
        using var scope = torch.NewDisposeScope();
        hidden = hidden + self_attn.forward(input_layernorm.call(hidden), mask, cos, sin, cache, layerIndex);
        hidden = hidden + mlp.call(post_attention_layernorm.call(hidden));
        return hidden.MoveToOuterDisposeScope();
    }
}

/// <summary>The bare Llama model (<c>model</c> in every head): token embedding, decoder layers, final norm.</summary>
[TargetModules("embed_tokens", "norm")]
public sealed partial class LlamaModel : nn.Module, IDecoderStack, IGradientCheckpointing
{
    private nn.Module<Tensor, Tensor> embed_tokens;
    private readonly ModuleList<LlamaDecoderLayer> layers;
    private nn.Module<Tensor, Tensor> norm;
    private readonly RotaryEmbedding rotary_emb;

    /// <summary>A randomly initialised model of the config's sizes.</summary>
    public LlamaModel(LlamaConfig config) : base("LlamaModel")
    {
        Config = config;
        embed_tokens = Embeddings.Create(config.VocabSize, config.HiddenSize, config.PadTokenId);
        layers = nn.ModuleList(Enumerable.Range(0, config.NumHiddenLayers).Select(_ => new LlamaDecoderLayer(config)).ToArray());
        norm = new LlamaRmsNorm(config.HiddenSize, config.RmsNormEps);
        rotary_emb = new RotaryEmbedding("LlamaRotaryEmbedding", config.HeadDim, config.ResolveRope());
        RegisterComponents();
    }

    /// <summary>The config the model was built from.</summary>
    public LlamaConfig Config { get; }

    /// <summary>The token embedding (possibly wrapped by an adapter).</summary>
    public nn.Module<Tensor, Tensor> TokenEmbedding => embed_tokens;

    /// <inheritdoc />
    public bool GradientCheckpointing { get; set; }

    /// <summary>Runs the stack and returns the final hidden states (B, T, C).</summary>
    /// <param name="inputs">Ids or embeddings, padding mask (which may cover cached positions too), position ids.</param>
    /// <param name="cache">Earlier keys/values (generation cache or prefixes), appended to as the layers run.</param>
    public Tensor forward(ModelInputs inputs, KeyValueCache? cache)
    {
        using var scope = torch.NewDisposeScope();
        var hidden = inputs.InputsEmbeds ?? embed_tokens.call(inputs.InputIds ?? throw new ArgumentException("Llama needs input_ids or inputs_embeds."));
        var (batch, length) = (hidden.shape[0], hidden.shape[1]);
        var past = cache?.Length ?? 0;
        var positions = inputs.PositionIds ?? torch.arange(past, past + length, device: hidden.device).unsqueeze(0);
        var (cos, sin) = rotary_emb.forward(positions, hidden.dtype);       // (B, T, rotary)

        var mask = AttentionMasks.Causal(inputs.AttentionMask, batch, length, past, hidden.dtype, hidden.device);
        for (int i = 0; i < layers.Count; i++)
        {
            var (layer, index) = (layers[i], i);
            hidden = GradientCheckpoint.Run(GradientCheckpointing, training, (x, e) => layer.forward(x, e[0]!, e[1]!, e[2]!, cache, index), hidden, cache, mask, cos, sin);
        }
        return norm.call(hidden).MoveToOuterDisposeScope();
    }
}
