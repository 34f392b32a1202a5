// ResNet and its image-classification head, following transformers' models/resnet/modeling_resnet.py.
using Peft.Modeling;
using Peft.Tuners;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Peft.Backbones.ResNet;

/// <summary>The stages in order (transformers' <c>ResNetEncoder</c>).</summary>
public sealed class ResNetEncoder : nn.Module<Tensor, Tensor>
{
    private readonly ModuleList<ResNetStage> stages;

    /// <summary>The stages of <paramref name="config"/>.</summary>
    public ResNetEncoder(ResNetConfig config) : base(nameof(ResNetEncoder))
    {
        stages = nn.ModuleList(Enumerable.Range(0, config.HiddenSizes.Count).Select(i => new ResNetStage(config, i)).ToArray());
        RegisterComponents();
    }

    /// <summary>(B, embedding_size, h, w) → the last stage's map (B, hidden_sizes[-1], h', w').</summary>
    public override Tensor forward(Tensor map)
    {
        using var scope = torch.NewDisposeScope();
        var hidden = map;
        foreach (var stage in stages) hidden = stage.call(hidden);
        return hidden.MoveToOuterDisposeScope();
    }
}

/// <summary>The bare network (<c>resnet</c> in every head): stem, stages, global average pooling.</summary>
public sealed class ResNetModel : nn.Module<Tensor, Tensor>
{
    private readonly ResNetEmbeddings embedder;
    private readonly ResNetEncoder encoder;

    /// <summary>A randomly initialised network.</summary>
    public ResNetModel(ResNetConfig config) : base(nameof(ResNetModel))
    {
        embedder = new ResNetEmbeddings(config);
        encoder = new ResNetEncoder(config);
        RegisterComponents();
    }

    /// <summary>The stem convolution.</summary>
    public ResNetConvLayer Stem => embedder.Embedder;

    /// <summary>(B, channels, H, W) → pooled features (B, hidden_sizes[-1]); any size that leaves a grid of at least 1×1.</summary>
    public override Tensor forward(Tensor pixels)
    {
        using var scope = torch.NewDisposeScope();
        var map = encoder.call(embedder.call(pixels));                          // (B, C, h, w)
        return map.mean([2, 3]).MoveToOuterDisposeScope();                      // AdaptiveAvgPool2d((1, 1)), flattened
    }
}

/// <summary>
/// transformers' <c>nn.Sequential(nn.Flatten(), nn.Linear(...))</c>: the Linear is <c>classifier.1</c>. It copies
/// itself for modules_to_save.
/// </summary>
public sealed class ResNetClassifier : nn.Module<Tensor, Tensor>, ICloneableModule
{
    private readonly Linear linear;

    /// <summary>features → labels.</summary>
    public ResNetClassifier(int features, int labels) : base(nameof(ResNetClassifier))
    {
        linear = nn.Linear(features, labels);
        // Registered by hand: "1" (its index in transformers' Sequential) is not a C# field name.
        register_module("1", linear);
    }

    /// <summary>(B, C) or (B, C, 1, 1) → (B, labels).</summary>
    public override Tensor forward(Tensor features)
    {
        using var scope = torch.NewDisposeScope();
        return linear.call(features.flatten(1)).MoveToOuterDisposeScope();
    }

    /// <inheritdoc />
    public nn.Module<Tensor, Tensor> Clone()
    {
        using var noGrad = torch.no_grad();
        var copy = new ResNetClassifier((int)linear.in_features, (int)linear.out_features);
        var source = state_dict();
        foreach (var (name, tensor) in copy.state_dict()) tensor.copy_(source[name]);
        return ModuleCloner.PlacedLike(copy, this);
    }
}

/// <summary>Shared plumbing of ResNet's models: the network, registered as <c>resnet</c>.</summary>
public abstract class ResNetPreTrainedModel : PreTrainedModel
{
    private const string NetworkName = "resnet";

    /// <summary>Builds the network and registers it as <c>resnet</c>.</summary>
    protected ResNetPreTrainedModel(string name, ResNetConfig config, TaskType task) : base(name, config, task)
    {
        RegisterBaseModel(NetworkName, new ResNetModel(config));
    }

    /// <summary>The network.</summary>
    protected ResNetModel Network => Registered<ResNetModel>(NetworkName);

    /// <summary>ResNet has no token embedding, so prompt learning does not apply; this is the stem convolution.</summary>
    public override nn.Module<Tensor, Tensor> InputEmbeddings => Network.Stem;

    /// <inheritdoc />
    public override string BaseModelPrefix => NetworkName;
}

/// <summary>ResNet classifying an image from its pooled last-stage features.</summary>
[TargetModules("classifier")]
public sealed partial class ResNetForImageClassification : ResNetPreTrainedModel
{
    private nn.Module<Tensor, Tensor> classifier;

    /// <summary>A randomly initialised model with <c>num_labels</c> outputs.</summary>
    public ResNetForImageClassification(ResNetConfig config) : base(nameof(ResNetForImageClassification), config, TaskType.ImageClassification)
    {
        classifier = new ResNetClassifier(config.HiddenSizes[^1], config.NumLabels);
        RegisterComponents();
    }

    /// <inheritdoc />
    public override ModelOutputs forward(ModelInputs inputs)
    {
        using var scope = torch.NewDisposeScope();
        var logits = classifier.call(Network.call(inputs.RequirePixelValues("ResNet")));
        var loss = inputs.Labels is null ? null : Losses.SequenceClassification(logits, inputs.Labels, Config.NumLabels);
        return new ModelOutputs { Logits = logits.MoveToOuterDisposeScope(), Loss = loss?.MoveToOuterDisposeScope() };
    }
}

/// <summary>ResNet's pooled features (transformers' <c>ResNetModel</c>'s pooler_output, flattened).</summary>
public sealed class ResNetForFeatureExtraction : ResNetPreTrainedModel
{
    /// <summary>The bare network.</summary>
    public ResNetForFeatureExtraction(ResNetConfig config) : base(nameof(ResNetModel), config, TaskType.FeatureExtraction)
    {
        RegisterComponents();
    }

    /// <inheritdoc />
    public override ModelOutputs forward(ModelInputs inputs) => new() { Logits = Network.call(inputs.RequirePixelValues("ResNet")) };
}
