// GPT-Neo attention and MLP, following transformers' models/gpt_neo/modeling_gpt_neo.py (eager attention; scaled_dot_product_attention computes the same, see FusedAttention).
using Peft.Modeling;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Peft.Backbones.GptNeo;

/// <summary>
/// Causal self-attention, global or local (a sliding window of <c>window_size</c> keys). Unlike
/// GPT-2, the scores are not divided by sqrt(head_dim), and q/k/v have no bias.
/// </summary>
[TargetModules("k_proj", "v_proj", "q_proj", "out_proj")]
public sealed partial class GptNeoSelfAttention : nn.Module
{
    private readonly Dropout attn_dropout;
    private readonly Dropout resid_dropout;
    private nn.Module<Tensor, Tensor> k_proj;
    private nn.Module<Tensor, Tensor> v_proj;
    private nn.Module<Tensor, Tensor> q_proj;
    private nn.Module<Tensor, Tensor> out_proj;

    private readonly int _heads;
    private readonly int _headDim;
    private readonly long? _window;
    private readonly AttentionImplementation _attention;

    /// <summary>An attention layer of the given kind ("global" or "local").</summary>
    public GptNeoSelfAttention(GptNeoConfig config, string attentionType) : base("GPTNeoSelfAttention")
    {
        attn_dropout = nn.Dropout(config.AttentionDropout);
        resid_dropout = nn.Dropout(config.ResidDropout);
        k_proj = nn.Linear(config.HiddenSize, config.HiddenSize, hasBias: false);
        v_proj = nn.Linear(config.HiddenSize, config.HiddenSize, hasBias: false);
        q_proj = nn.Linear(config.HiddenSize, config.HiddenSize, hasBias: false);
        out_proj = nn.Linear(config.HiddenSize, config.HiddenSize, hasBias: true);
        _heads = config.NumHeads;
        _headDim = config.HeadDim;
        _window = attentionType == "local" ? config.WindowSize : null;
        _attention = config.AttnImplementation;
        RegisterComponents();
    }

    /// <summary>Runs attention over <paramref name="hidden"/> (B, T, C).</summary>
    /// <param name="hidden">Input states.</param>
    /// <param name="mask">Additive causal and padding mask (B, 1, T, P + T), shared by all layers.</param>
    /// <param name="cache">Earlier keys/values (generation cache or prefixes); this step's are appended.</param>
    /// <param name="layerIndex">This layer's index in the cache.</param>
    public Tensor forward(Tensor hidden, Tensor mask, KeyValueCache? cache, int layerIndex)
    {
        using var scope = torch.NewDisposeScope();
        var (batch, length) = (hidden.shape[0], hidden.shape[1]);
        var query = SplitHeads(q_proj.call(hidden), batch, length);           // (B, H, T, D)
        var key = SplitHeads(k_proj.call(hidden), batch, length);
        var value = SplitHeads(v_proj.call(hidden), batch, length);
        if (cache is not null)
        {
            (key, value) = cache.Append(layerIndex, key, value);             // (B, H, P + T, D)
        }

        // The layer's own causal (or sliding-window) pattern, applied before the model's additive mask as the reference does.
        var keyLength = key.shape[2];
        var queries = torch.arange(keyLength - length, keyLength, device: query.device).unsqueeze(1);    // (T, 1)
        var keys = torch.arange(keyLength, device: query.device).unsqueeze(0);                           // (1, K)
        var allowed = keys.le(queries);
        if (_window is { } window) allowed = allowed.logical_and(keys.gt(queries - window));
        var minimum = torch.tensor(torch.finfo(ScalarType.Float32).min, ScalarType.Float32, query.device);

        Tensor context;
        if (FusedAttention.Use(_attention, query))
        {
            // where(allowed, s, min) + mask = s + (where(allowed, 0, min) + mask) up to float32 absorption of s by min;
            // no row is all −∞ (a query's own key is always allowed). Scale 1 and float32 scores, as the eager path.
            var pattern = torch.where(allowed, torch.zeros_like(minimum), minimum) + mask.to(ScalarType.Float32);
            context = FusedAttention.Compute(query, key, value, pattern, 1.0, attn_dropout.p, training, inFloat32: true);
        }
        else
        {
            // Scores in fp32 and unscaled.
            var scores = torch.matmul(query.to(ScalarType.Float32), key.to(ScalarType.Float32).transpose(-1, -2));
            scores = torch.where(allowed, scores, minimum) + mask;
            var probabilities = attn_dropout.call(nn.functional.softmax(scores, dim: -1).to(value.dtype));
            context = torch.matmul(probabilities, value);
        }
        var output = context                                                 // (B, H, T, D)
            .transpose(1, 2).reshape(batch, length, _heads * _headDim);
        return resid_dropout.call(out_proj.call(output)).MoveToOuterDisposeScope();
    }

    private Tensor SplitHeads(Tensor x, long batch, long length) => x.view(batch, length, _heads, _headDim).transpose(1, 2);
}

/// <summary>The wrapper the reference puts around the self-attention (module <c>attn</c>, child <c>attention</c>).</summary>
public sealed class GptNeoAttention : nn.Module
{
    private readonly GptNeoSelfAttention attention;

    /// <summary>Layer <paramref name="layerIndex"/>'s attention, of the kind attention_layers names.</summary>
    public GptNeoAttention(GptNeoConfig config, int layerIndex) : base("GPTNeoAttention")
    {
        attention = new GptNeoSelfAttention(config, config.AttentionLayers[layerIndex]);
        RegisterComponents();
    }

    /// <summary>See <see cref="GptNeoSelfAttention.forward"/>.</summary>
    public Tensor forward(Tensor hidden, Tensor mask, KeyValueCache? cache, int layerIndex) =>
        attention.forward(hidden, mask, cache, layerIndex);
}

/// <summary>The feed-forward block: c_fc, activation, c_proj, dropout.</summary>
[TargetModules("c_fc", "c_proj")]
public sealed partial class GptNeoMlp : nn.Module<Tensor, Tensor>
{
    private nn.Module<Tensor, Tensor> c_fc;
    private nn.Module<Tensor, Tensor> c_proj;
    private readonly Dropout dropout;
    private readonly Func<Tensor, Tensor> _activation;

    /// <summary>An MLP sized by the config.</summary>
    public GptNeoMlp(GptNeoConfig config) : base("GPTNeoMLP")
    {
        var inner = config.IntermediateSize ?? 4 * config.HiddenSize;
        c_fc = nn.Linear(config.HiddenSize, inner);
        c_proj = nn.Linear(inner, config.HiddenSize);
        dropout = nn.Dropout(config.ResidDropout);
        _activation = Activations.Get(config.ActivationFunction);
        RegisterComponents();
    }

    /// <inheritdoc />
    public override Tensor forward(Tensor hidden)
    {
        using var scope = torch.NewDisposeScope();
        return dropout.call(c_proj.call(_activation(c_fc.call(hidden)))).MoveToOuterDisposeScope();
    }
}
