// GPT-J attention and MLP, following transformers' models/gptj/modeling_gptj.py (eager attention; scaled_dot_product_attention computes the same, see FusedAttention).
using Peft.Modeling;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Peft.Backbones.GptJ;

/// <summary>
/// Causal self-attention with separate q/k/v projections (no bias) and rotary positions on the
/// first <c>rotary_dim</c> features of each head, rotated in interleaved pairs (GPT-J's rotate_every_two).
/// </summary>
[TargetModules("k_proj", "v_proj", "q_proj", "out_proj")]
public sealed partial class GptJAttention : nn.Module
{
    private readonly Dropout attn_dropout;
    private readonly Dropout resid_dropout;
    private nn.Module<Tensor, Tensor> k_proj;
    private nn.Module<Tensor, Tensor> v_proj;
    private nn.Module<Tensor, Tensor> q_proj;
    private nn.Module<Tensor, Tensor> out_proj;

    private readonly int _heads;
    private readonly int _headDim;
    private readonly int _rotaryDim;
    private readonly double _scale;
    private readonly AttentionImplementation _attention;

    /// <summary>An attention layer sized by the config.</summary>
    public GptJAttention(GptJConfig config) : base("GPTJAttention")
    {
        if (config.NEmbd % config.NHead != 0)
        {
            throw new ArgumentException($"n_embd ({config.NEmbd}) must be divisible by n_head ({config.NHead}).");
        }
        attn_dropout = nn.Dropout(config.AttnPdrop);
        resid_dropout = nn.Dropout(config.ResidPdrop);
        k_proj = nn.Linear(config.NEmbd, config.NEmbd, hasBias: false);
        v_proj = nn.Linear(config.NEmbd, config.NEmbd, hasBias: false);
        q_proj = nn.Linear(config.NEmbd, config.NEmbd, hasBias: false);
        out_proj = nn.Linear(config.NEmbd, config.NEmbd, hasBias: false);
        _heads = config.NHead;
        _headDim = config.HeadDim;
        _rotaryDim = config.RotaryDim;
        _scale = Math.Sqrt(_headDim);
        _attention = config.AttnImplementation;
        RegisterComponents();
    }

    /// <summary>Runs attention over <paramref name="hidden"/> (B, T, C).</summary>
    /// <param name="hidden">Input states.</param>
    /// <param name="mask">Additive causal and padding mask, (B, 1, T, P + T).</param>
    /// <param name="cos">Rotary cosines for these positions, (B, T, rotary_dim / 2).</param>
    /// <param name="sin">Rotary sines, (B, T, rotary_dim / 2).</param>
    /// <param name="cache">Earlier keys/values (generation cache or prefixes); this step's are appended.</param>
    /// <param name="layerIndex">This layer's index in the cache.</param>
    public Tensor forward(Tensor hidden, Tensor mask, Tensor cos, Tensor sin, KeyValueCache? cache, int layerIndex)
    {
        using var scope = torch.NewDisposeScope();
        var (batch, length) = (hidden.shape[0], hidden.shape[1]);
        var query = q_proj.call(hidden).view(batch, length, _heads, _headDim);      // (B, T, H, D)
        var key = k_proj.call(hidden).view(batch, length, _heads, _headDim);
        var value = v_proj.call(hidden).view(batch, length, _heads, _headDim).permute(0, 2, 1, 3); // (B, H, T, D)

        key = Rotate(key, cos, sin).permute(0, 2, 1, 3);                            // (B, H, T, D)
        query = Rotate(query, cos, sin).permute(0, 2, 1, 3);
        if (cache is not null)
        {
            (key, value) = cache.Append(layerIndex, key, value);                    // (B, H, P + T, D)
        }

        var output = (FusedAttention.Use(_attention, query)
                ? FusedAttention.Compute(query, key, value, mask, 1.0 / _scale, attn_dropout.p, training, inFloat32: true)
                : Eager(query, key, value, mask))                                   // (B, H, T, D)
            .permute(0, 2, 1, 3).reshape(batch, length, _heads * _headDim);
        return resid_dropout.call(out_proj.call(output)).MoveToOuterDisposeScope();
    }

    // (B, H, T, D): the reference's _attn, scores in float32.
    private Tensor Eager(Tensor query, Tensor key, Tensor value, Tensor mask)
    {
        var scores = torch.matmul(query.to(ScalarType.Float32), key.to(ScalarType.Float32).transpose(-1, -2)) / _scale + mask;
        var probabilities = attn_dropout.call(nn.functional.softmax(scores, dim: -1).to(value.dtype));
        return torch.matmul(probabilities, value);
    }

    /// <summary>Rotates the first rotary_dim features of each head of <paramref name="x"/> (B, T, H, D); the rest pass.</summary>
    private Tensor Rotate(Tensor x, Tensor cos, Tensor sin)
    {
        // (B, T, R / 2) → (B, T, 1, R), each angle repeated for its pair of features.
        sin = torch.stack([sin, sin], dim: -1).flatten(-2).unsqueeze(2);
        cos = torch.stack([cos, cos], dim: -1).flatten(-2).unsqueeze(2);
        if (_rotaryDim >= _headDim) return x * cos + RotateEveryTwo(x) * sin;
        var rotated = x.narrow(-1, 0, _rotaryDim);
        var passed = x.narrow(-1, _rotaryDim, _headDim - _rotaryDim);
        return torch.cat([rotated * cos + RotateEveryTwo(rotated) * sin, passed], dim: -1);
    }

    /// <summary>Pairs (x₀, x₁), (x₂, x₃), ... → (−x₁, x₀), (−x₃, x₂), ...</summary>
    private static Tensor RotateEveryTwo(Tensor x)
    {
        var size = x.shape[^1];
        var even = x.slice(-1, 0, size, 2);
        var odd = x.slice(-1, 1, size, 2);
        return torch.stack([-odd, even], dim: -1).flatten(-2);
    }
}

/// <summary>The feed-forward block: fc_in, activation, fc_out.</summary>
[TargetModules("fc_in", "fc_out")]
public sealed partial class GptJMlp : nn.Module<Tensor, Tensor>
{
    private nn.Module<Tensor, Tensor> fc_in;
    private nn.Module<Tensor, Tensor> fc_out;
    private readonly Dropout dropout;
    private readonly Func<Tensor, Tensor> _activation;

    /// <summary>An MLP sized by the config.</summary>
    public GptJMlp(GptJConfig config) : base("GPTJMLP")
    {
        var inner = config.NInner ?? 4 * config.NEmbd;
        fc_in = nn.Linear(config.NEmbd, inner);
        fc_out = nn.Linear(inner, config.NEmbd);
        dropout = nn.Dropout(config.ResidPdrop);
        _activation = Activations.Get(config.ActivationFunction);
        RegisterComponents();
    }

    /// <inheritdoc />
    public override Tensor forward(Tensor hidden)
    {
        using var scope = torch.NewDisposeScope();
        return dropout.call(fc_out.call(_activation(fc_in.call(hidden)))).MoveToOuterDisposeScope();
    }
}
