// CLIP's text encoder, following transformers' models/clip/modeling_clip.py (CLIPTextModel, eager attention;
// scaled_dot_product_attention computes the same, see FusedAttention).
using Peft.Modeling;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Peft.Backbones.ClipText;

/// <summary>Multi-head self-attention with separate, biased q/k/v projections.</summary>
[TargetModules]
public sealed partial class ClipAttention : nn.Module
{
    private nn.Module<Tensor, Tensor> k_proj;
    private nn.Module<Tensor, Tensor> v_proj;
    private nn.Module<Tensor, Tensor> q_proj;
    private nn.Module<Tensor, Tensor> out_proj;

    private readonly int _heads;
    private readonly int _headDim;
    private readonly double _scale;
    private readonly double _dropout;
    private readonly AttentionImplementation _attention;

    /// <summary>Attention sized by the config.</summary>
    public ClipAttention(ClipTextConfig config) : base("CLIPAttention")
    {
        if (config.HiddenSize % config.NumAttentionHeads != 0)
        {
            throw new ArgumentException($"hidden_size ({config.HiddenSize}) is not a multiple of num_attention_heads ({config.NumAttentionHeads}).");
        }
        k_proj = nn.Linear(config.HiddenSize, config.HiddenSize);
        v_proj = nn.Linear(config.HiddenSize, config.HiddenSize);
        q_proj = nn.Linear(config.HiddenSize, config.HiddenSize);
        out_proj = nn.Linear(config.HiddenSize, config.HiddenSize);
        _heads = config.NumAttentionHeads;
        _headDim = config.HeadDim;
        _scale = Math.Pow(_headDim, -0.5);
        _dropout = config.AttentionDropout;
        _attention = config.AttnImplementation;
        RegisterComponents();
    }

    /// <summary>(B, T, C) with an additive mask (B, 1, T, T) → (B, T, C).</summary>
    public Tensor forward(Tensor hidden, Tensor mask)
    {
        using var scope = torch.NewDisposeScope();
        var (batch, length) = (hidden.shape[0], hidden.shape[1]);
        var query = SplitHeads(q_proj.call(hidden), batch, length);                 // (B, H, T, D)
        var key = SplitHeads(k_proj.call(hidden), batch, length);
        var value = SplitHeads(v_proj.call(hidden), batch, length);

        var output = (FusedAttention.Use(_attention, query)
                ? FusedAttention.Compute(query, key, value, mask, _scale, _dropout, training)
                : Eager(query, key, value, mask))                                    // (B, H, T, D)
            .transpose(1, 2).reshape(batch, length, _heads * _headDim);
        return out_proj.call(output).MoveToOuterDisposeScope();
    }

    // (B, H, T, D): the reference's eager_attention_forward, softmax in float32.
    private Tensor Eager(Tensor query, Tensor key, Tensor value, Tensor mask)
    {
        var scores = torch.matmul(query, key.transpose(-1, -2)) * _scale + mask;
        var probabilities = nn.functional.softmax(scores, dim: -1, dtype: ScalarType.Float32).to(query.dtype);
        probabilities = nn.functional.dropout(probabilities, _dropout, training);
        return torch.matmul(probabilities, value);
    }

    private Tensor SplitHeads(Tensor x, long batch, long length) => x.view(batch, length, _heads, _headDim).transpose(1, 2);
}

/// <summary>The feed-forward block: fc1, activation (quick GELU by default), fc2.</summary>
[TargetModules]
public sealed partial class ClipMlp : nn.Module<Tensor, Tensor>
{
    private nn.Module<Tensor, Tensor> fc1;
    private nn.Module<Tensor, Tensor> fc2;
    private readonly Func<Tensor, Tensor> _activation;

    /// <summary>An MLP sized by the config.</summary>
    public ClipMlp(ClipTextConfig config) : base("CLIPMLP")
    {
        _activation = Activations.Get(config.HiddenAct);
        fc1 = nn.Linear(config.HiddenSize, config.IntermediateSize);
        fc2 = nn.Linear(config.IntermediateSize, config.HiddenSize);
        RegisterComponents();
    }

    /// <inheritdoc />
    public override Tensor forward(Tensor hidden)
    {
        using var scope = torch.NewDisposeScope();
        return fc2.call(_activation(fc1.call(hidden))).MoveToOuterDisposeScope();
    }
}

/// <summary>One pre-norm encoder layer: attention and MLP, each with a residual connection.</summary>
[TargetModules("layer_norm1", "layer_norm2")]
public sealed partial class ClipEncoderLayer : nn.Module
{
    private readonly ClipAttention self_attn;
    private nn.Module<Tensor, Tensor> layer_norm1;
    private readonly ClipMlp mlp;
    private nn.Module<Tensor, Tensor> layer_norm2;

    /// <summary>A layer sized by the config.</summary>
    public ClipEncoderLayer(ClipTextConfig config) : base("CLIPEncoderLayer")
    {
        self_attn = new ClipAttention(config);
        layer_norm1 = nn.LayerNorm(config.HiddenSize, config.LayerNormEps);
        mlp = new ClipMlp(config);
        layer_norm2 = nn.LayerNorm(config.HiddenSize, config.LayerNormEps);
        RegisterComponents();
    }

    /// <summary>(B, T, C) → (B, T, C).</summary>
    public Tensor forward(Tensor hidden, Tensor mask)
    {
        using var scope = torch.NewDisposeScope();
        hidden = hidden + self_attn.forward(layer_norm1.call(hidden), mask);
        hidden = hidden + mlp.call(layer_norm2.call(hidden));
        return hidden.MoveToOuterDisposeScope();
    }
}

/// <summary>Token and learned absolute position embeddings.</summary>
[TargetModules("token_embedding")]
public sealed partial class ClipTextEmbeddings : nn.Module
{
    private nn.Module<Tensor, Tensor> token_embedding;
    private readonly Embedding position_embedding;

    /// <summary>Embeddings sized by the config.</summary>
    public ClipTextEmbeddings(ClipTextConfig config) : base("CLIPTextEmbeddings")
    {
        token_embedding = Peft.Layers.Embeddings.Create(config.VocabSize, config.HiddenSize);
        position_embedding = Peft.Layers.Embeddings.Create(config.MaxPositionEmbeddings, config.HiddenSize);
        RegisterComponents();
    }

    /// <summary>The token embedding (possibly wrapped by an adapter).</summary>
    public nn.Module<Tensor, Tensor> TokenEmbedding => token_embedding;

    /// <summary>Embeds ids (or takes embeddings) and adds positions: (B, T, C).</summary>
    public Tensor forward(ModelInputs inputs)
    {
        using var scope = torch.NewDisposeScope();
        var embeds = inputs.InputsEmbeds ?? token_embedding.call(inputs.InputIds ?? throw new ArgumentException("CLIP needs input_ids or inputs_embeds."));
        var length = embeds.shape[1];
        var maximum = position_embedding.weight!.shape[0];
        if (length > maximum)
        {
            throw new ArgumentException($"Sequence length must be less than max_position_embeddings (got sequence length {length} and max_position_embeddings {maximum}).");
        }
        var positions = inputs.PositionIds ?? torch.arange(length, device: embeds.device).unsqueeze(0);
        return (embeds + position_embedding.call(positions)).MoveToOuterDisposeScope();
    }
}

/// <summary>The encoder stack (<c>encoder.layers</c>).</summary>
public sealed class ClipEncoder : nn.Module, IGradientCheckpointing
{
    private readonly ModuleList<ClipEncoderLayer> layers;

    /// <summary>A stack sized by the config.</summary>
    public ClipEncoder(ClipTextConfig config) : base("CLIPEncoder")
    {
        layers = nn.ModuleList(Enumerable.Range(0, config.NumHiddenLayers).Select(_ => new ClipEncoderLayer(config)).ToArray());
        RegisterComponents();
    }

    /// <summary>(B, T, C) → (B, T, C).</summary>
    public Tensor forward(Tensor hidden, Tensor mask)
    {
        using var scope = torch.NewDisposeScope();
        foreach (var layer in layers) hidden = GradientCheckpoint.Run(GradientCheckpointing, training, (x, e) => layer.forward(x, e[0]!), hidden, null, mask);
        return hidden.MoveToOuterDisposeScope();
    }

    /// <inheritdoc />
    public bool GradientCheckpointing { get; set; }
}

/// <summary>
/// CLIP's text encoder as a feature extractor: causal attention (plus padding), final layer norm;
/// <see cref="ModelOutputs.Logits"/> is the last hidden state (B, T, C). It computes no loss.
/// </summary>
[TargetModules("final_layer_norm")]
public sealed partial class ClipTextModel : PreTrainedModel
{
    private readonly ClipTextEmbeddings embeddings;
    private readonly ClipEncoder encoder;
    private nn.Module<Tensor, Tensor> final_layer_norm;

    /// <summary>transformers keeps CLIP's text model with CLIP (model_type clip_text_model).</summary>
    public override string TransformersModule => "transformers.models.clip.modeling_clip";

    /// <summary>A randomly initialised model of the config's sizes.</summary>
    public ClipTextModel(ClipTextConfig config) : base("CLIPTextModel", config, TaskType.FeatureExtraction)
    {
        Clip = config;
        embeddings = new ClipTextEmbeddings(config);
        encoder = new ClipEncoder(config);
        final_layer_norm = nn.LayerNorm(config.HiddenSize, config.LayerNormEps);
        RegisterComponents();
    }

    /// <summary>The config.</summary>
    public ClipTextConfig Clip { get; }

    /// <inheritdoc />
    public override nn.Module<Tensor, Tensor> InputEmbeddings => embeddings.TokenEmbedding;

    /// <inheritdoc />
    public override PromptLayout PromptLayout => new(Clip.NumHiddenLayers, Clip.NumAttentionHeads, Clip.HeadDim, Clip.HiddenSize);

    /// <inheritdoc />
    public override ModelOutputs forward(ModelInputs inputs)
    {
        if (inputs.PastKeyValues is not null)
        {
            throw new NotSupportedException(
                "CLIP's text encoder takes no past_key_values (the reference's model has no such input), so prefix tuning cannot drive it.");
        }
        using var scope = torch.NewDisposeScope();
        var hidden = embeddings.forward(inputs);
        var (batch, length) = (hidden.shape[0], hidden.shape[1]);
        var mask = AttentionMasks.Causal(inputs.AttentionMask, batch, length, 0, hidden.dtype, hidden.device);
        hidden = final_layer_norm.call(encoder.forward(hidden, mask));
        return new ModelOutputs { Logits = hidden.MoveToOuterDisposeScope() };
    }
}
