// A small token-mixing text classifier: embeddings, blocks that add a projection of the sequence's
// masked mean to every token (the "mixing") and a per-token MLP, a final norm, and a classifier on
// the masked mean. Module names follow Hugging Face habits so that a checkpoint loads by name.
using Peft;
using Peft.Modeling;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace ThirdPartyPlugin.TinyMixer;

/// <summary>
/// One block. Every Linear is an adapter slot: <c>[TargetModules]</c> names them, and they are
/// non-readonly <c>nn.Module&lt;Tensor, Tensor&gt;</c> fields so that an adapter layer can take their place.
/// </summary>
[TargetModules("mix_proj", "fc_in", "fc_out")]
public sealed partial class TinyMixerBlock : nn.Module
{
    private readonly LayerNorm norm_1;
    private nn.Module<Tensor, Tensor> mix_proj;
    private readonly LayerNorm norm_2;
    private nn.Module<Tensor, Tensor> fc_in;
    private nn.Module<Tensor, Tensor> fc_out;
    private readonly Func<Tensor, Tensor> _activation;

    /// <summary>A randomly initialised block of the config's sizes.</summary>
    public TinyMixerBlock(TinyMixerConfig config) : base("TinyMixerBlock")
    {
        norm_1 = nn.LayerNorm(config.HiddenSize, config.LayerNormEps);
        mix_proj = nn.Linear(config.HiddenSize, config.HiddenSize, hasBias: false);
        norm_2 = nn.LayerNorm(config.HiddenSize, config.LayerNormEps);
        fc_in = nn.Linear(config.HiddenSize, config.IntermediateSize);
        fc_out = nn.Linear(config.IntermediateSize, config.HiddenSize);
        _activation = Activations.Get(config.HiddenAct);
        RegisterComponents();
    }

    /// <summary>(B, T, C) → (B, T, C).</summary>
    /// <param name="hidden">Token states.</param>
    /// <param name="mask">1 for real tokens and 0 for padding, (B, T, 1), in the states' dtype.</param>
    public Tensor forward(Tensor hidden, Tensor mask)
    {
        using var scope = torch.NewDisposeScope();
        var context = TinyMixerModel.MaskedMean(norm_1.call(hidden), mask);   // (B, C)
        hidden = hidden + mix_proj.call(context).unsqueeze(1);
        hidden = hidden + fc_out.call(_activation(fc_in.call(norm_2.call(hidden))));
        return hidden.MoveToOuterDisposeScope();
    }
}

/// <summary>The bare model (<c>mixer</c> in the classifier): token embedding, blocks, final norm.</summary>
[TargetModules("embed_tokens")]
public sealed partial class TinyMixerModel : nn.Module
{
    private nn.Module<Tensor, Tensor> embed_tokens;
    private readonly ModuleList<TinyMixerBlock> layers;
    private readonly LayerNorm norm;

    /// <summary>A randomly initialised model of the config's sizes.</summary>
    public TinyMixerModel(TinyMixerConfig config) : base("TinyMixerModel")
    {
        embed_tokens = Peft.Layers.Embeddings.Create(config.VocabSize, config.HiddenSize, config.PadTokenId);
        // Built in one go: items added to a ModuleList after construction are not registered.
        layers = nn.ModuleList(Enumerable.Range(0, config.NumHiddenLayers).Select(_ => new TinyMixerBlock(config)).ToArray());
        norm = nn.LayerNorm(config.HiddenSize, config.LayerNormEps);
        RegisterComponents();
    }

    /// <summary>The token embedding (possibly wrapped by an adapter).</summary>
    public nn.Module<Tensor, Tensor> TokenEmbedding => embed_tokens;

    /// <summary>The final states (B, T, C) and the padding mask (B, T, 1) they were computed with.</summary>
    public (Tensor Hidden, Tensor Mask) forward(ModelInputs inputs)
    {
        using var scope = torch.NewDisposeScope();
        var embeds = inputs.InputsEmbeds
            ?? embed_tokens.call(inputs.InputIds ?? throw new ArgumentException("tiny-mixer needs input_ids or inputs_embeds."));
        var (batch, length) = (embeds.shape[0], embeds.shape[1]);
        var mask = (inputs.AttentionMask is { } given ? given[.., ^(int)length..] : torch.ones(batch, length, device: embeds.device))
            .to(embeds.dtype).unsqueeze(-1);
        var hidden = embeds;
        foreach (var layer in layers) hidden = layer.forward(hidden, mask);
        return (norm.call(hidden).MoveToOuterDisposeScope(), mask.MoveToOuterDisposeScope());
    }

    /// <summary>The mean over real tokens: (B, T, C) with a (B, T, 1) mask → (B, C).</summary>
    public static Tensor MaskedMean(Tensor hidden, Tensor mask) =>
        (hidden * mask).sum(1) / mask.sum(1).clamp_min(1);
}

/// <summary>tiny-mixer classifying a sequence from the mean of its token states (<c>classifier</c>, with bias).</summary>
[TargetModules("classifier")]
public sealed partial class TinyMixerForSequenceClassification : PreTrainedModel
{
    private readonly TinyMixerModel mixer;
    private nn.Module<Tensor, Tensor> classifier;

    /// <summary>A randomly initialised model with <c>num_labels</c> outputs.</summary>
    public TinyMixerForSequenceClassification(TinyMixerConfig config)
        : base("TinyMixerForSequenceClassification", config, TaskType.SequenceClassification)
    {
        mixer = new TinyMixerModel(config);
        classifier = nn.Linear(config.HiddenSize, config.NumLabels);
        RegisterComponents();
    }

    /// <inheritdoc />
    public override nn.Module<Tensor, Tensor> InputEmbeddings => mixer.TokenEmbedding;

    /// <inheritdoc />
    public override string BaseModelPrefix => "mixer";

    /// <inheritdoc />
    public override ModelOutputs forward(ModelInputs inputs)
    {
        using var scope = torch.NewDisposeScope();
        var (hidden, mask) = mixer.forward(inputs);
        var logits = classifier.call(TinyMixerModel.MaskedMean(hidden, mask));
        var loss = inputs.Labels is null ? null : Losses.SequenceClassification(logits, inputs.Labels, Config.NumLabels);
        return new ModelOutputs { Logits = logits.MoveToOuterDisposeScope(), Loss = loss?.MoveToOuterDisposeScope() };
    }
}
