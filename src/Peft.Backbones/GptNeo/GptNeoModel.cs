// GPT-Neo decoder stack, following transformers' models/gpt_neo/modeling_gpt_neo.py.
// Copied from Gpt2/Gpt2Model.cs (GptNeoModel.forward: embeddings, blocks, final norm), as transformers
// copies GPT-2's: kept as a copy so each model reads alone; a fix in one belongs in the other.
using Peft.Backbones.Shared;
using Peft.Modeling;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Peft.Backbones.GptNeo;

/// <summary>One pre-norm block: attention and MLP, each with a residual connection.</summary>
[TargetModules("ln_1", "ln_2")]
public sealed partial class GptNeoBlock : nn.Module
{
    private nn.Module<Tensor, Tensor> ln_1;
    private readonly GptNeoAttention attn;
    private nn.Module<Tensor, Tensor> ln_2;
    private readonly GptNeoMlp mlp;

    /// <summary>Block <paramref name="layerIndex"/>.</summary>
    public GptNeoBlock(GptNeoConfig config, int layerIndex) : base("GPTNeoBlock")
    {
        ln_1 = nn.LayerNorm(config.HiddenSize, config.LayerNormEpsilon);
        attn = new GptNeoAttention(config, layerIndex);
        ln_2 = nn.LayerNorm(config.HiddenSize, config.LayerNormEpsilon);
        mlp = new GptNeoMlp(config);
        RegisterComponents();
    }

    /// <summary>(B, T, C) → (B, T, C).</summary>
    public Tensor forward(Tensor hidden, Tensor mask, KeyValueCache? cache, int layerIndex)
    {
        using var scope = torch.NewDisposeScope();
        hidden = attn.forward(ln_1.call(hidden), mask, cache, layerIndex) + hidden;
        hidden = hidden + mlp.call(ln_2.call(hidden));
        return hidden.MoveToOuterDisposeScope();
    }
}

/// <summary>The bare GPT-Neo model (<c>transformer</c> in every head): embeddings, blocks, final norm.</summary>
[TargetModules("wte", "ln_f")]
public sealed partial class GptNeoModel : nn.Module, IDecoderStack, IGradientCheckpointing
{
    private nn.Module<Tensor, Tensor> wte;
    private readonly Embedding wpe;
    private readonly Dropout drop;
    private readonly ModuleList<GptNeoBlock> h;
    private nn.Module<Tensor, Tensor> ln_f;

    /// <summary>A randomly initialised model of the config's sizes.</summary>
    public GptNeoModel(GptNeoConfig config) : base("GPTNeoModel")
    {
        Config = config;
        wte = Peft.Layers.Embeddings.Create(config.VocabSize, config.HiddenSize);
        wpe = Peft.Layers.Embeddings.Create(config.MaxPositionEmbeddings, config.HiddenSize);
        drop = nn.Dropout(config.EmbedDropout);
        h = nn.ModuleList(Enumerable.Range(0, config.NumLayers).Select(i => new GptNeoBlock(config, i)).ToArray());
        ln_f = nn.LayerNorm(config.HiddenSize, config.LayerNormEpsilon);
        RegisterComponents();
    }

    /// <summary>The config the model was built from.</summary>
    public GptNeoConfig Config { get; }

    /// <summary>The token embedding (possibly wrapped by an adapter).</summary>
    public nn.Module<Tensor, Tensor> TokenEmbedding => wte;

    /// <inheritdoc />
    public bool GradientCheckpointing { get; set; }

    /// <summary>Runs the stack and returns the final hidden states (B, T, C).</summary>
    public Tensor forward(ModelInputs inputs, KeyValueCache? cache)
    {
        using var scope = torch.NewDisposeScope();
        var embeds = inputs.InputsEmbeds ?? wte.call(inputs.InputIds ?? throw new ArgumentException("GPT-Neo needs input_ids or inputs_embeds."));
        var (batch, length) = (embeds.shape[0], embeds.shape[1]);
        var past = cache?.Length ?? 0;
        // Positions follow the cache (padding does not shift them), as the reference's cache_position.
        var positions = inputs.PositionIds ?? torch.arange(past, past + length, device: embeds.device).unsqueeze(0);
        var hidden = embeds + wpe.call(positions);
        if (inputs.TokenTypeIds is { } tokenTypes) hidden = hidden + wte.call(tokenTypes.view(-1, length));
        hidden = drop.call(hidden);

        var mask = AttentionMasks.Causal(inputs.AttentionMask, batch, length, past, hidden.dtype, hidden.device);
        for (int i = 0; i < h.Count; i++)
        {
            var (block, index) = (h[i], i);
            hidden = GradientCheckpoint.Run(GradientCheckpointing, training, (x, e) => block.forward(x, e[0]!, cache, index), hidden, cache, mask);
        }
        return ln_f.call(hidden).MoveToOuterDisposeScope();
    }
}
