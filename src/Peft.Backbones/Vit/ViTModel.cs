// ViT and its image-classification head, following transformers' models/vit/modeling_vit.py.
using Peft.Modeling;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Peft.Backbones.Vit;

/// <summary>The bare encoder (<c>vit</c> in every head): embeddings, layers, final LayerNorm.</summary>
public sealed class ViTModel : nn.Module<Tensor, Tensor>, IGradientCheckpointing
{
    private readonly ViTEmbeddings embeddings;
    private readonly ModuleList<ViTLayer> layers;
    private readonly LayerNorm layernorm;

    /// <summary>A randomly initialised encoder.</summary>
    public ViTModel(ViTConfig config) : base(nameof(ViTModel))
    {
        embeddings = new ViTEmbeddings(config);
        layers = nn.ModuleList(Enumerable.Range(0, config.NumHiddenLayers).Select(_ => new ViTLayer(config)).ToArray());
        layernorm = nn.LayerNorm(config.HiddenSize, config.LayerNormEps);
        RegisterComponents();
    }

    /// <summary>The patch projection.</summary>
    public nn.Module<Tensor, Tensor> Projection => embeddings.Projection;

    /// <summary>(B, channels, H, W) → the last hidden state (B, 1 + patches, C).</summary>
    public override Tensor forward(Tensor pixels)
    {
        using var scope = torch.NewDisposeScope();
        var hidden = embeddings.call(pixels);
        foreach (var layer in layers) hidden = GradientCheckpoint.Run(GradientCheckpointing, training, (x, _) => layer.call(x), hidden, null);
        return layernorm.call(hidden).MoveToOuterDisposeScope();
    }

    /// <inheritdoc />
    public bool GradientCheckpointing { get; set; }
}

/// <summary>Shared plumbing of ViT's models: the encoder, registered as <c>vit</c>.</summary>
public abstract class ViTPreTrainedModel : PreTrainedModel
{
    private const string EncoderName = "vit";

    /// <summary>Builds the encoder and registers it as <c>vit</c>.</summary>
    protected ViTPreTrainedModel(string name, ViTConfig config, TaskType task) : base(name, config, task)
    {
        RegisterBaseModel(EncoderName, new ViTModel(config));
    }

    /// <summary>The encoder.</summary>
    protected ViTModel Encoder => Registered<ViTModel>(EncoderName);

    /// <summary>The patch projection: what transformers' get_input_embeddings returns for ViT.</summary>
    public override nn.Module<Tensor, Tensor> InputEmbeddings => Encoder.Projection;

    /// <inheritdoc />
    public override string BaseModelPrefix => EncoderName;

    /// <inheritdoc />
    public override ModuleRenames ClassicNames => ViTArchitecture.ClassicNames;
}

/// <summary>ViT classifying an image from its [CLS] token.</summary>
[TargetModules("classifier")]
public sealed partial class ViTForImageClassification : ViTPreTrainedModel
{
    private nn.Module<Tensor, Tensor> classifier;

    /// <summary>A randomly initialised model with <c>num_labels</c> outputs.</summary>
    public ViTForImageClassification(ViTConfig config) : base(nameof(ViTForImageClassification), config, TaskType.ImageClassification)
    {
        classifier = nn.Linear(config.HiddenSize, config.NumLabels);
        RegisterComponents();
    }

    /// <inheritdoc />
    public override ModelOutputs forward(ModelInputs inputs)
    {
        using var scope = torch.NewDisposeScope();
        var hidden = Encoder.call(inputs.RequirePixelValues("ViT"));
        var logits = classifier.call(hidden[.., 0]);
        var loss = inputs.Labels is null ? null : Losses.SequenceClassification(logits, inputs.Labels, Config.NumLabels);
        return new ModelOutputs { Logits = logits.MoveToOuterDisposeScope(), Loss = loss?.MoveToOuterDisposeScope() };
    }
}

/// <summary>ViT's last hidden state as features (transformers' ViTModel without its pooler).</summary>
public sealed class ViTForFeatureExtraction : ViTPreTrainedModel
{
    /// <summary>The bare encoder.</summary>
    public ViTForFeatureExtraction(ViTConfig config) : base(nameof(ViTModel), config, TaskType.FeatureExtraction)
    {
        RegisterComponents();
    }

    /// <inheritdoc />
    public override ModelOutputs forward(ModelInputs inputs) => new() { Logits = Encoder.call(inputs.RequirePixelValues("ViT")) };
}
