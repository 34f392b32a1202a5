// GPT-J decoder stack, following transformers' models/gptj/modeling_gptj.py.
using Peft.Backbones.Shared;
using Peft.Modeling;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Peft.Backbones.GptJ;

/// <summary>One block: attention and MLP run in parallel on the same ln_1 output, both added to the residual.</summary>
[TargetModules("ln_1")]
public sealed partial class GptJBlock : nn.Module
{
    private nn.Module<Tensor, Tensor> ln_1;
    private readonly GptJAttention attn;
    private readonly GptJMlp mlp;

    /// <summary>A block sized by the config.</summary>
    public GptJBlock(GptJConfig config) : base("GPTJBlock")
    {
        ln_1 = nn.LayerNorm(config.NEmbd, config.LayerNormEpsilon);
        attn = new GptJAttention(config);
        mlp = new GptJMlp(config);
        RegisterComponents();
    }

    /// <summary>(B, T, C) → (B, T, C).</summary>
    public Tensor forward(Tensor hidden, Tensor mask, Tensor cos, Tensor sin, KeyValueCache? cache, int layerIndex)
    {
        using var scope = torch.NewDisposeScope();
        var normed = ln_1.call(hidden);
        var attended = attn.forward(normed, mask, cos, sin, cache, layerIndex);
        return (attended + mlp.call(normed) + hidden).MoveToOuterDisposeScope();
    }
}

/// <summary>The bare GPT-J model (<c>transformer</c> in every head): token embedding, blocks, final norm.</summary>
[TargetModules("wte", "ln_f")]
public sealed partial class GptJModel : nn.Module, IDecoderStack, IGradientCheckpointing
{
    private nn.Module<Tensor, Tensor> wte;
    private readonly Dropout drop;
    private readonly ModuleList<GptJBlock> h;
    private nn.Module<Tensor, Tensor> ln_f;

    /// <summary>A randomly initialised model of the config's sizes.</summary>
    public GptJModel(GptJConfig config) : base("GPTJModel")
    {
        Config = config;
        wte = Peft.Layers.Embeddings.Create(config.VocabSize, config.NEmbd);
        drop = nn.Dropout(config.EmbdPdrop);
        h = nn.ModuleList(Enumerable.Range(0, config.NLayer).Select(_ => new GptJBlock(config)).ToArray());
        ln_f = nn.LayerNorm(config.NEmbd, config.LayerNormEpsilon);
        RegisterComponents();
    }

    /// <summary>The config the model was built from.</summary>
    public GptJConfig Config { get; }

    /// <summary>The token embedding (possibly wrapped by an adapter).</summary>
    public nn.Module<Tensor, Tensor> TokenEmbedding => wte;

    /// <inheritdoc />
    public bool GradientCheckpointing { get; set; }

    /// <summary>Runs the stack and returns the final hidden states (B, T, C).</summary>
    /// <param name="inputs">Ids or embeddings, token type ids, padding mask (which may cover cached positions too), position ids.</param>
    /// <param name="cache">Earlier keys/values (generation cache or prefixes), appended to as the blocks run.</param>
    public Tensor forward(ModelInputs inputs, KeyValueCache? cache)
    {
        using var scope = torch.NewDisposeScope();
        var hidden = inputs.InputsEmbeds ?? wte.call(inputs.InputIds ?? throw new ArgumentException("GPT-J needs input_ids or inputs_embeds."));
        var (batch, length) = (hidden.shape[0], hidden.shape[1]);
        var past = cache?.Length ?? 0;
        var positions = inputs.PositionIds ?? torch.arange(past, past + length, device: hidden.device).unsqueeze(0);
        var (cos, sin) = CosSin(positions, hidden.dtype);                    // (B, T, rotary_dim / 2)
        if (inputs.TokenTypeIds is { } types) hidden = hidden + wte.call(types.view(-1, length));
        hidden = drop.call(hidden);

        var mask = AttentionMasks.Causal(inputs.AttentionMask, batch, length, past, hidden.dtype, hidden.device);
        for (int i = 0; i < h.Count; i++)
        {
            var (block, index) = (h[i], i);
            hidden = GradientCheckpoint.Run(GradientCheckpointing, training, (x, e) => block.forward(x, e[0]!, e[1]!, e[2]!, cache, index), hidden, cache, mask, cos, sin);
        }
        return ln_f.call(hidden).MoveToOuterDisposeScope();
    }

    /// <summary>GPT-J's sinusoidal table at <paramref name="positions"/>: base 10000 over rotary_dim features, computed in float32.</summary>
    private (Tensor Cos, Tensor Sin) CosSin(Tensor positions, ScalarType dtype)
    {
        using var scope = torch.NewDisposeScope();
        var dim = Config.RotaryDim;
        var exponents = torch.arange(0, dim, 2, ScalarType.Int64, positions.device).to(ScalarType.Float32) / dim;
        var inverse = torch.tensor(10000f, device: positions.device).pow(exponents).reciprocal();
        var angles = positions.to(ScalarType.Float32).unsqueeze(-1) * inverse;
        return (angles.cos().to(dtype).MoveToOuterDisposeScope(), angles.sin().to(dtype).MoveToOuterDisposeScope());
    }
}
