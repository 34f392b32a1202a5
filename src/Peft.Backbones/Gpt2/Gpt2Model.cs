// GPT-2 decoder stack, following transformers' models/gpt2/modeling_gpt2.py.
using Peft.Backbones.Shared;
using Peft.Modeling;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Peft.Backbones.Gpt2;

/// <summary>One pre-norm block: attention and MLP, each with a residual connection.</summary>
[TargetModules("ln_1", "ln_2")]
public sealed partial class Gpt2Block : nn.Module
{
    private nn.Module<Tensor, Tensor> ln_1;
    private readonly Gpt2Attention attn;
    private nn.Module<Tensor, Tensor> ln_2;
    private readonly Gpt2Mlp mlp;

    /// <summary>Block <paramref name="layerIndex"/>.</summary>
    public Gpt2Block(Gpt2Config config, int layerIndex) : base("GPT2Block")
    {
        ln_1 = nn.LayerNorm(config.NEmbd, config.LayerNormEpsilon);
        attn = new Gpt2Attention(config, layerIndex);
        ln_2 = nn.LayerNorm(config.NEmbd, config.LayerNormEpsilon);
        mlp = new Gpt2Mlp(config);
        RegisterComponents();
    }

    /// <summary>(B, T, C) → (B, T, C).</summary>
    public Tensor forward(Tensor hidden, Tensor mask, KeyValueCache? cache, int layerIndex)
    {
        using var scope = torch.NewDisposeScope();
        hidden = hidden + attn.forward(ln_1.call(hidden), mask, cache, layerIndex);
        hidden = hidden + mlp.call(ln_2.call(hidden));
        return hidden.MoveToOuterDisposeScope();
    }
}

/// <summary>The bare GPT-2 model (<c>transformer</c> in every head): embeddings, blocks, final norm.</summary>
[TargetModules("wte", "wpe", "ln_f")]
public sealed partial class Gpt2Model : nn.Module, IDecoderStack, IGradientCheckpointing
{
    private nn.Module<Tensor, Tensor> wte;
    private nn.Module<Tensor, Tensor> wpe;
    private readonly Dropout drop;
    private readonly ModuleList<Gpt2Block> h;
    private nn.Module<Tensor, Tensor> ln_f;

    /// <summary>A randomly initialised model of the config's sizes.</summary>
    public Gpt2Model(Gpt2Config config) : base("GPT2Model")
    {
        Config = config;
        wte = Peft.Layers.Embeddings.Create(config.VocabSize, config.NEmbd);
        wpe = Peft.Layers.Embeddings.Create(config.NPositions, config.NEmbd);
        drop = nn.Dropout(config.EmbdPdrop);
        h = nn.ModuleList(Enumerable.Range(0, config.NLayer).Select(i => new Gpt2Block(config, i)).ToArray());
        ln_f = nn.LayerNorm(config.NEmbd, config.LayerNormEpsilon);
        RegisterComponents();
    }

    /// <summary>The config the model was built from.</summary>
    public Gpt2Config Config { get; }

    /// <summary>The token embedding (possibly wrapped by an adapter).</summary>
    public nn.Module<Tensor, Tensor> TokenEmbedding => wte;

    /// <inheritdoc />
    public bool GradientCheckpointing { get; set; }

    /// <summary>Runs the stack and returns the final hidden states (B, T, C).</summary>
    public Tensor forward(ModelInputs inputs, KeyValueCache? cache)
    {
        using var scope = torch.NewDisposeScope();
        var embeds = inputs.InputsEmbeds ?? wte.call(inputs.InputIds ?? throw new ArgumentException("GPT-2 needs input_ids or inputs_embeds."));
        var (batch, length) = (embeds.shape[0], embeds.shape[1]);
        var past = cache?.Length ?? 0;
        var positions = inputs.PositionIds ?? torch.arange(past, past + length, device: embeds.device).unsqueeze(0);
        var hidden = drop.call(embeds + wpe.call(positions));

        var mask = AttentionMasks.Causal(inputs.AttentionMask, batch, length, past, hidden.dtype, hidden.device);
        for (int i = 0; i < h.Count; i++)
        {
            var (block, index) = (h[i], i);
            hidden = GradientCheckpoint.Run(GradientCheckpointing, training, (x, e) => block.forward(x, e[0]!, cache, index), hidden, cache, mask);
        }
        return ln_f.call(hidden).MoveToOuterDisposeScope();
    }
}
