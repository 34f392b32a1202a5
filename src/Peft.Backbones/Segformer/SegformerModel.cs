// SegFormer's encoder, all-MLP decode head and task heads, following transformers' models/segformer/modeling_segformer.py.
using Peft.Modeling;
using Peft.Tuners;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Peft.Backbones.Segformer;

/// <summary>The bare encoder (<c>segformer</c> in every head): the stages' feature maps, finest first.</summary>
public sealed class SegformerModel : nn.Module
{
    private readonly ModuleList<SegformerStage> stages;

    /// <summary>A randomly initialised encoder.</summary>
    public SegformerModel(SegformerConfig config) : base(nameof(SegformerModel))
    {
        var rates = config.DropPathRates;
        stages = nn.ModuleList(Enumerable.Range(0, config.NumEncoderBlocks)
            .Select(i => new SegformerStage(config, i, rates.Skip(config.Depths.Take(i).Sum()).Take(config.Depths[i])))
            .ToArray());
        RegisterComponents();
    }

    /// <summary>(B, channels, H, W) → one (B, C_i, H_i, W_i) map per stage.</summary>
    public IReadOnlyList<Tensor> forward(Tensor pixels)
    {
        var maps = new List<Tensor>();
        var hidden = pixels;
        foreach (var stage in stages)
        {
            hidden = stage.call(hidden);
            maps.Add(hidden);
        }
        return maps;
    }
}

/// <summary>Projects one stage's feature map to the decoder's channels.</summary>
[TargetModules("proj")]
public sealed partial class SegformerMlp : nn.Module<Tensor, Tensor>
{
    private nn.Module<Tensor, Tensor> proj;

    /// <summary>C_i → decoder_hidden_size.</summary>
    public SegformerMlp(int inputs, int outputs) : base(nameof(SegformerMlp))
    {
        proj = nn.Linear(inputs, outputs);
        RegisterComponents();
    }

    /// <summary>(B, C_i, h, w) → (B, h·w, D).</summary>
    public override Tensor forward(Tensor map)
    {
        using var scope = torch.NewDisposeScope();
        return proj.call(map.flatten(2).transpose(1, 2)).MoveToOuterDisposeScope();
    }
}

/// <summary>
/// The all-MLP decode head: every stage projected to one width and upsampled to the finest grid,
/// concatenated (coarsest first), fused by a 1×1 convolution with BatchNorm and ReLU, then a 1×1 classifier.
/// </summary>
/// <remarks>
/// Its input is the list of the stages' maps, so a model calls <see cref="Forward"/>; the single-tensor
/// forward() of a slot module is refused. It copies itself (running statistics included) for modules_to_save.
/// </remarks>
[TargetModules("linear_fuse", "classifier")]
public sealed partial class SegformerDecodeHead : nn.Module<Tensor, Tensor>, ICloneableModule
{
    private readonly ModuleList<SegformerMlp> linear_projections;
    private nn.Module<Tensor, Tensor> linear_fuse;
    private readonly BatchNorm2d batch_norm;
    private readonly ReLU activation;
    private readonly Dropout dropout;
    private nn.Module<Tensor, Tensor> classifier;
    private readonly SegformerConfig _config;

    /// <summary>A head sized by the config.</summary>
    public SegformerDecodeHead(SegformerConfig config) : base(nameof(SegformerDecodeHead))
    {
        _config = config;
        linear_projections = nn.ModuleList(config.HiddenSizes.Take(config.NumEncoderBlocks).Select(c => new SegformerMlp(c, config.DecoderHiddenSize)).ToArray());
        linear_fuse = nn.Conv2d(config.DecoderHiddenSize * config.NumEncoderBlocks, config.DecoderHiddenSize, 1, bias: false);
        batch_norm = nn.BatchNorm2d(config.DecoderHiddenSize);
        activation = nn.ReLU();
        dropout = nn.Dropout(config.ClassifierDropoutProb);
        classifier = nn.Conv2d(config.DecoderHiddenSize, config.NumLabels, 1);
        RegisterComponents();
    }

    /// <summary>The stages' maps (B, C_i, H_i, W_i) → logits (B, num_labels, H_0, W_0).</summary>
    public Tensor Forward(IReadOnlyList<Tensor> maps)
    {
        using var scope = torch.NewDisposeScope();
        var (batch, height, width) = (maps[^1].shape[0], maps[0].shape[2], maps[0].shape[3]);
        var unified = new List<Tensor>();
        for (int i = 0; i < linear_projections.Count; i++)
        {
            var projected = linear_projections[i].call(maps[i]).transpose(1, 2).reshape(batch, -1, maps[i].shape[2], maps[i].shape[3]);
            unified.Add(nn.functional.interpolate(projected, size: [height, width], mode: InterpolationMode.Bilinear, align_corners: false));
        }
        unified.Reverse();
        var fused = dropout.call(activation.call(batch_norm.call(linear_fuse.call(torch.cat(unified, 1)))));
        return classifier.call(fused).MoveToOuterDisposeScope();
    }

    /// <summary>Refused: the head reads every stage's map; call <see cref="Forward"/>.</summary>
    public override Tensor forward(Tensor input) =>
        throw new InvalidOperationException("SegFormer's decode head reads every encoder stage's map: call Forward(maps), not forward(tensor).");

    /// <inheritdoc />
    public nn.Module<Tensor, Tensor> Clone()
    {
        if (modules().Any(m => m is IAdapterLayer))
        {
            throw new NotSupportedException("modules_to_save cannot copy a decode_head that holds adapter layers; leave its modules out of target_modules.");
        }
        using var noGrad = torch.no_grad();
        var copy = new SegformerDecodeHead(_config);
        var source = state_dict();
        foreach (var (name, tensor) in copy.state_dict()) tensor.copy_(source[name]);
        copy.train(training);
        return copy.to(parameters().First().dtype);
    }
}

/// <summary>Shared plumbing of SegFormer's heads: the encoder, registered as <c>segformer</c>.</summary>
public abstract class SegformerPreTrainedModel : PreTrainedModel
{
    private const string EncoderName = "segformer";

    /// <summary>Builds the encoder and registers it as <c>segformer</c>.</summary>
    protected SegformerPreTrainedModel(string name, SegformerConfig config, TaskType task) : base(name, config, task)
    {
        Segformer = config;
        RegisterBaseModel(EncoderName, new SegformerModel(config));
    }

    /// <summary>The config.</summary>
    public SegformerConfig Segformer { get; }

    /// <summary>The encoder.</summary>
    protected SegformerModel Encoder => Registered<SegformerModel>(EncoderName);

    /// <summary>SegFormer has no token embedding; prompt learning does not apply. This is the first stage's patch convolution.</summary>
    public override nn.Module<Tensor, Tensor> InputEmbeddings =>
        (nn.Module<Tensor, Tensor>)named_modules().First(m => m.name == "segformer.stages.0.patch_embeddings.proj").module;

    /// <inheritdoc />
    public override string BaseModelPrefix => EncoderName;

    /// <inheritdoc />
    public override IReadOnlyList<string> HeadModuleNames => ["classifier", "decode_head"];

    /// <inheritdoc />
    public override ModuleRenames ClassicNames => SegformerArchitecture.ClassicNames;

    /// <summary>The encoder's maps for <paramref name="inputs"/>' pixels.</summary>
    protected IReadOnlyList<Tensor> Encode(ModelInputs inputs) =>
        Encoder.forward(inputs.RequirePixelValues("SegFormer"));
}

/// <summary>SegFormer labelling every pixel through the all-MLP decode head (logits at a quarter of the input's size).</summary>
[TargetModules("decode_head")]
public sealed partial class SegformerForSemanticSegmentation : SegformerPreTrainedModel
{
    private nn.Module<Tensor, Tensor> decode_head;

    /// <summary>A randomly initialised model with <c>num_labels</c> classes.</summary>
    public SegformerForSemanticSegmentation(SegformerConfig config)
        : base(nameof(SegformerForSemanticSegmentation), config, TaskType.SemanticSegmentation)
    {
        decode_head = new SegformerDecodeHead(config);
        RegisterComponents();
    }

    /// <inheritdoc />
    public override ModelOutputs forward(ModelInputs inputs)
    {
        using var scope = torch.NewDisposeScope();
        // modules_to_save wraps the head: run the copy the wrapper would.
        var head = (SegformerDecodeHead)(decode_head is ModulesToSaveWrapper wrapper ? wrapper.Current : decode_head);
        var logits = head.Forward(Encode(inputs));
        var loss = inputs.Labels is null ? null : Losses.SemanticSegmentation(logits, inputs.Labels, Config.NumLabels, Segformer.SemanticLossIgnoreIndex);
        return new ModelOutputs { Logits = logits.MoveToOuterDisposeScope(), Loss = loss?.MoveToOuterDisposeScope() };
    }
}

/// <summary>SegFormer classifying an image from the mean of its last stage's tokens.</summary>
[TargetModules("classifier")]
public sealed partial class SegformerForImageClassification : SegformerPreTrainedModel
{
    private nn.Module<Tensor, Tensor> classifier;

    /// <summary>A randomly initialised model with <c>num_labels</c> outputs.</summary>
    public SegformerForImageClassification(SegformerConfig config)
        : base(nameof(SegformerForImageClassification), config, TaskType.ImageClassification)
    {
        classifier = nn.Linear(config.HiddenSizes[config.NumEncoderBlocks - 1], config.NumLabels);
        RegisterComponents();
    }

    /// <inheritdoc />
    public override ModelOutputs forward(ModelInputs inputs)
    {
        using var scope = torch.NewDisposeScope();
        var last = Encode(inputs)[^1];                                              // (B, C, h, w)
        var logits = classifier.call(last.flatten(2).mean([2]));
        var loss = inputs.Labels is null ? null : Losses.SequenceClassification(logits, inputs.Labels, Config.NumLabels);
        return new ModelOutputs { Logits = logits.MoveToOuterDisposeScope(), Loss = loss?.MoveToOuterDisposeScope() };
    }
}
