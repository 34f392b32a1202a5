// BLOOM decoder stack, following transformers' models/bloom/modeling_bloom.py.
using Peft.Backbones.Shared;
using Peft.Modeling;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Peft.Backbones.Bloom;

/// <summary>One block: layer norm, attention, layer norm, MLP, with residuals from before or after the norms.</summary>
[TargetModules("input_layernorm", "post_attention_layernorm")]
public sealed partial class BloomBlock : nn.Module
{
    private nn.Module<Tensor, Tensor> input_layernorm;
    private readonly BloomAttention self_attention;
    private nn.Module<Tensor, Tensor> post_attention_layernorm;
    private readonly BloomMlp mlp;
    private readonly bool _residualAfterNorm;

    /// <summary>A block sized by the config.</summary>
    public BloomBlock(BloomConfig config) : base("BloomBlock")
    {
        input_layernorm = nn.LayerNorm(config.HiddenSize, config.LayerNormEpsilon);
        self_attention = new BloomAttention(config);
        post_attention_layernorm = nn.LayerNorm(config.HiddenSize, config.LayerNormEpsilon);
        mlp = new BloomMlp(config);
        _residualAfterNorm = config.ApplyResidualConnectionPostLayernorm;
        RegisterComponents();
    }

    /// <summary>(B, T, C) → (B, T, C).</summary>
    public Tensor forward(Tensor hidden, Tensor alibi, Tensor mask, KeyValueCache? cache, int layerIndex)
    {
        using var scope = torch.NewDisposeScope();
        var normed = input_layernorm.call(hidden);
        var attention = self_attention.forward(normed, _residualAfterNorm ? normed : hidden, alibi, mask, cache, layerIndex);
        normed = post_attention_layernorm.call(attention);
        return mlp.forward(normed, _residualAfterNorm ? normed : attention).MoveToOuterDisposeScope();
    }
}

/// <summary>The bare BLOOM model (<c>transformer</c> in every head): embeddings and their norm, blocks, final norm.</summary>
[TargetModules("word_embeddings", "word_embeddings_layernorm", "ln_f")]
public sealed partial class BloomModel : nn.Module, IDecoderStack, IGradientCheckpointing
{
    private nn.Module<Tensor, Tensor> word_embeddings;
    private nn.Module<Tensor, Tensor> word_embeddings_layernorm;
    private readonly ModuleList<BloomBlock> h;
    private nn.Module<Tensor, Tensor> ln_f;

    /// <summary>A randomly initialised model of the config's sizes.</summary>
    public BloomModel(BloomConfig config) : base("BloomModel")
    {
        Config = config;
        word_embeddings = Peft.Layers.Embeddings.Create(config.VocabSize, config.HiddenSize);
        word_embeddings_layernorm = nn.LayerNorm(config.HiddenSize, config.LayerNormEpsilon);
        h = nn.ModuleList(Enumerable.Range(0, config.NLayer).Select(_ => new BloomBlock(config)).ToArray());
        ln_f = nn.LayerNorm(config.HiddenSize, config.LayerNormEpsilon);
        RegisterComponents();
    }

    /// <summary>The config the model was built from.</summary>
    public BloomConfig Config { get; }

    /// <summary>The token embedding (possibly wrapped by an adapter).</summary>
    public nn.Module<Tensor, Tensor> TokenEmbedding => word_embeddings;

    /// <inheritdoc />
    public bool GradientCheckpointing { get; set; }

    /// <summary>Runs the stack and returns the final hidden states (B, T, C).</summary>
    public Tensor forward(ModelInputs inputs, KeyValueCache? cache)
    {
        using var scope = torch.NewDisposeScope();
        var embeds = inputs.InputsEmbeds ?? word_embeddings.call(inputs.InputIds ?? throw new ArgumentException("BLOOM needs input_ids or inputs_embeds."));
        var (batch, length) = (embeds.shape[0], embeds.shape[1]);
        var past = cache?.Length ?? 0;
        var hidden = word_embeddings_layernorm.call(embeds);

        // ALiBi reads positions from the padding mask, which covers the cached positions too.
        var padding = inputs.AttentionMask ?? torch.ones(batch, past + length, ScalarType.Int64, hidden.device);
        var alibi = Alibi(padding.to(hidden.device), Config.NHead, hidden.dtype);
        var mask = AttentionMasks.Causal(padding, batch, length, past, hidden.dtype, hidden.device);
        for (int i = 0; i < h.Count; i++)
        {
            var (block, index) = (h[i], i);
            hidden = GradientCheckpoint.Run(GradientCheckpointing, training, (x, e) => block.forward(x, e[0]!, e[1]!, cache, index), hidden, cache, alibi, mask);
        }
        return ln_f.call(hidden).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// The ALiBi bias (B·H, 1, K): head h's slope times each key's position among the attended
    /// tokens (cumulative sum of the mask, 0 on padding), as transformers' build_alibi_tensor.
    /// </summary>
    public static Tensor Alibi(Tensor paddingMask, int heads, ScalarType dtype)
    {
        using var scope = torch.NewDisposeScope();
        var (batch, keys) = (paddingMask.shape[0], paddingMask.shape[1]);
        var slopes = AlibiSlopes(heads, paddingMask.device);                    // (H)
        var positions = ((paddingMask.cumsum(-1) - 1) * paddingMask).unsqueeze(1);   // (B, 1, K)
        var alibi = slopes.unsqueeze(-1) * positions;                             // (B, H, K)
        return alibi.reshape(batch * heads, 1, keys).to(dtype).MoveToOuterDisposeScope();
    }

    /// <summary>The per-head ALiBi slopes: a geometric sequence, interleaved when the head count is not a power of two.</summary>
    public static Tensor AlibiSlopes(int heads, Device device)
    {
        using var scope = torch.NewDisposeScope();
        var closest = 1 << (int)Math.Floor(Math.Log2(heads));
        var baseValue = torch.tensor((float)Math.Pow(2, -Math.Pow(2, -(Math.Log2(closest) - 3))), ScalarType.Float32, device);
        var slopes = torch.pow(baseValue, torch.arange(1, 1 + closest, ScalarType.Int32, device));
        if (closest != heads)
        {
            var extraBase = torch.tensor((float)Math.Pow(2, -Math.Pow(2, -(Math.Log2(2 * closest) - 3))), ScalarType.Float32, device);
            var remaining = Math.Min(closest, heads - closest);
            var extra = torch.pow(extraBase, torch.arange(1, 1 + 2 * remaining, 2, ScalarType.Int32, device));
            slopes = torch.cat([slopes, extra], dim: 0);
        }
        return slopes.MoveToOuterDisposeScope();
    }
}
