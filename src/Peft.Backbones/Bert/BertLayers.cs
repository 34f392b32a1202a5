// BERT's embeddings and encoder layers, following transformers' models/bert/modeling_bert.py (sdpa and eager attention).
using Peft.Layers;
using Peft.Modeling;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Peft.Backbones.Bert;

/// <summary>What the encoder needs from an embeddings block (BERT's, RoBERTa's, LayoutLM's).</summary>
public interface IBertEmbeddings
{
    /// <summary>The token embedding (possibly wrapped by an adapter).</summary>
    nn.Module<Tensor, Tensor> WordEmbeddings { get; }

    /// <summary>(B, T) ids or (B, T, C) embeddings → (B, T, C), after <paramref name="pastLength"/> prefix positions.</summary>
    Tensor forward(ModelInputs inputs, long pastLength);
}

/// <summary>Word + position + token-type embeddings, then LayerNorm and dropout.</summary>
[TargetModules("word_embeddings", "position_embeddings", "token_type_embeddings", "LayerNorm")]
public sealed partial class BertEmbeddings : nn.Module, IBertEmbeddings
{
    private nn.Module<Tensor, Tensor> word_embeddings;
    private nn.Module<Tensor, Tensor> position_embeddings;
    private nn.Module<Tensor, Tensor> token_type_embeddings;
    private nn.Module<Tensor, Tensor> LayerNorm;
    private readonly Dropout dropout;

    /// <summary>Embeddings sized by the config; the word embedding keeps pad_token_id's row out of gradients.</summary>
    public BertEmbeddings(BertConfig config) : base("BertEmbeddings")
    {
        word_embeddings = Embeddings.Create(config.VocabSize, config.HiddenSize, config.PadTokenId);
        position_embeddings = Peft.Layers.Embeddings.Create(config.MaxPositionEmbeddings, config.HiddenSize);
        token_type_embeddings = Peft.Layers.Embeddings.Create(config.TypeVocabSize, config.HiddenSize);
        LayerNorm = nn.LayerNorm(config.HiddenSize, config.LayerNormEps);
        dropout = nn.Dropout(config.HiddenDropoutProb);
        RegisterComponents();
    }

    /// <summary>The token embedding (possibly wrapped by an adapter).</summary>
    public nn.Module<Tensor, Tensor> WordEmbeddings => word_embeddings;

    /// <summary>(B, T) ids or (B, T, C) embeddings → (B, T, C).</summary>
    public Tensor forward(ModelInputs inputs, long pastLength)
    {
        using var scope = torch.NewDisposeScope();
        var embeds = inputs.InputsEmbeds ?? word_embeddings.call(inputs.InputIds ?? throw new ArgumentException("BERT needs input_ids or inputs_embeds."));
        var (batch, length) = (embeds.shape[0], embeds.shape[1]);
        var positions = inputs.PositionIds ?? torch.arange(pastLength, pastLength + length, device: embeds.device).unsqueeze(0);
        var tokenTypes = inputs.TokenTypeIds ?? torch.zeros(batch, length, ScalarType.Int64, embeds.device);
        var hidden = embeds + token_type_embeddings.call(tokenTypes) + position_embeddings.call(positions);
        return dropout.call(LayerNorm.call(hidden)).MoveToOuterDisposeScope();
    }
}

/// <summary>Multi-head self-attention with separate query, key and value projections.</summary>
[TargetModules("query", "key", "value")]
public sealed partial class BertSelfAttention : nn.Module
{
    private nn.Module<Tensor, Tensor> query;
    private nn.Module<Tensor, Tensor> key;
    private nn.Module<Tensor, Tensor> value;
    private readonly Dropout dropout;
    private readonly int _heads;
    private readonly int _headDim;
    private readonly AttentionImplementation _attention;

    /// <summary>Attention sized by the config.</summary>
    public BertSelfAttention(BertConfig config) : base("BertSelfAttention")
    {
        query = nn.Linear(config.HiddenSize, config.HiddenSize);
        key = nn.Linear(config.HiddenSize, config.HiddenSize);
        value = nn.Linear(config.HiddenSize, config.HiddenSize);
        dropout = nn.Dropout(config.AttentionProbsDropoutProb);
        _heads = config.NumAttentionHeads;
        _headDim = config.HeadDim;
        _attention = config.AttnImplementation;
        RegisterComponents();
    }

    /// <summary>(B, T, C) → (B, T, C); <paramref name="mask"/> is additive (B, 1, 1 or T, P + T); prefixes come in <paramref name="cache"/>.</summary>
    public Tensor forward(Tensor hidden, Tensor? mask, KeyValueCache? cache, int layerIndex)
    {
        using var scope = torch.NewDisposeScope();
        var (batch, length) = (hidden.shape[0], hidden.shape[1]);
        var q = SplitHeads(query.call(hidden), batch, length);                 // (B, H, T, D)
        var k = SplitHeads(key.call(hidden), batch, length);
        var v = SplitHeads(value.call(hidden), batch, length);
        if (cache is not null) (k, v) = cache.Append(layerIndex, k, v);        // (B, H, P + T, D)
        var attended = FusedAttention.Use(_attention, q) ? FusedAttention.Compute(q, k, v, mask, 1 / Math.Sqrt(_headDim), dropout.p, training) : Eager(q, k, v, mask);
        var context = attended.transpose(1, 2).reshape(batch, length, _heads * _headDim);
        return context.MoveToOuterDisposeScope();
    }

    // (B, H, T, D): the reference's eager_attention_forward.
    private Tensor Eager(Tensor q, Tensor k, Tensor v, Tensor? mask)
    {
        var scores = torch.matmul(q, k.transpose(-1, -2)) / Math.Sqrt(_headDim);
        if (mask is not null) scores = scores + mask;
        var probabilities = dropout.call(nn.functional.softmax(scores, dim: -1));
        return torch.matmul(probabilities, v);
    }

    private Tensor SplitHeads(Tensor x, long batch, long length) => x.view(batch, length, _heads, _headDim).transpose(1, 2);
}

/// <summary>A projection, dropout and residual LayerNorm (BertSelfOutput and BertOutput share this shape).</summary>
[TargetModules("dense", "LayerNorm")]
public sealed partial class BertResidualOutput : nn.Module
{
    private nn.Module<Tensor, Tensor> dense;
    private nn.Module<Tensor, Tensor> LayerNorm;
    private readonly Dropout dropout;

    /// <summary>Projects <paramref name="inFeatures"/> to the hidden size.</summary>
    public BertResidualOutput(BertConfig config, int inFeatures, string name) : base(name)
    {
        dense = nn.Linear(inFeatures, config.HiddenSize);
        LayerNorm = nn.LayerNorm(config.HiddenSize, config.LayerNormEps);
        dropout = nn.Dropout(config.HiddenDropoutProb);
        RegisterComponents();
    }

    /// <summary>LayerNorm(dropout(dense(hidden)) + residual).</summary>
    public Tensor forward(Tensor hidden, Tensor residual)
    {
        using var scope = torch.NewDisposeScope();
        return LayerNorm.call(dropout.call(dense.call(hidden)) + residual).MoveToOuterDisposeScope();
    }
}

/// <summary>The feed-forward expansion with its activation.</summary>
[TargetModules("dense")]
public sealed partial class BertIntermediate : nn.Module
{
    private nn.Module<Tensor, Tensor> dense;
    private readonly Func<Tensor, Tensor> _activation;

    /// <summary>Expands the hidden size to intermediate_size.</summary>
    public BertIntermediate(BertConfig config) : base("BertIntermediate")
    {
        dense = nn.Linear(config.HiddenSize, config.IntermediateSize);
        _activation = Activations.Get(config.HiddenAct);
        RegisterComponents();
    }

    /// <summary>act(dense(hidden)).</summary>
    public Tensor forward(Tensor hidden) => _activation(dense.call(hidden));
}

/// <summary>Self-attention and its output block (<c>attention.self</c>, <c>attention.output</c>).</summary>
public sealed class BertAttention : nn.Module
{
    private readonly BertSelfAttention self;
    private readonly BertResidualOutput output;

    /// <summary>Attention sized by the config.</summary>
    public BertAttention(BertConfig config) : base("BertAttention")
    {
        self = new BertSelfAttention(config);
        output = new BertResidualOutput(config, config.HiddenSize, "BertSelfOutput");
        RegisterComponents();
    }

    /// <summary>(B, T, C) → (B, T, C).</summary>
    public Tensor forward(Tensor hidden, Tensor? mask, KeyValueCache? cache, int layerIndex) =>
        output.forward(self.forward(hidden, mask, cache, layerIndex), hidden);
}

/// <summary>One post-norm encoder layer.</summary>
public sealed class BertLayer : nn.Module
{
    private readonly BertAttention attention;
    private readonly BertIntermediate intermediate;
    private readonly BertResidualOutput output;

    /// <summary>A layer sized by the config.</summary>
    public BertLayer(BertConfig config) : base("BertLayer")
    {
        attention = new BertAttention(config);
        intermediate = new BertIntermediate(config);
        output = new BertResidualOutput(config, config.IntermediateSize, "BertOutput");
        RegisterComponents();
    }

    /// <summary>(B, T, C) → (B, T, C).</summary>
    public Tensor forward(Tensor hidden, Tensor? mask, KeyValueCache? cache, int layerIndex)
    {
        using var scope = torch.NewDisposeScope();
        var attended = attention.forward(hidden, mask, cache, layerIndex);
        return output.forward(intermediate.forward(attended), attended).MoveToOuterDisposeScope();
    }
}
