// Recovers Hugging Face ResNetModel weights (transformers' modeling_resnet.py names) from an ONNX ResNet whose
// initializers carry no useful names (the CNTK export in Microsoft.ML.DnnImageFeaturizer.ResNet18 calls them
// ParameterNN / ConstantNN). The structure is read from the graph instead: the stem is the Conv → BatchNormalization
// on the graph's input; each residual Add joins a main path (Conv → BN, with Relu between, back to the block's input)
// and either that input itself or a projection (one Conv → BN). A block with a projection after the first starts a
// new stage, as in transformers' ResNetStage.
using TorchSharp;

namespace Peft.Pretrained.Onnx;

/// <summary>What <see cref="OnnxResNetWeights.Convert"/> found: the weights by Hugging Face name and the sizes for config.json.</summary>
/// <param name="Weights">Tensors named as transformers' ResNetModel names them, under <c>resnet.</c>.</param>
/// <param name="EmbeddingSize">Channels of the stem.</param>
/// <param name="HiddenSizes">Output channels per stage.</param>
/// <param name="Depths">Layers per stage.</param>
/// <param name="LayerType"><c>basic</c> or <c>bottleneck</c>.</param>
/// <param name="DownsampleInFirstStage">Whether the first stage's first layer has stride 2.</param>
internal sealed record OnnxResNet(
    Dictionary<string, torch.Tensor> Weights, int EmbeddingSize, IReadOnlyList<int> HiddenSizes, IReadOnlyList<int> Depths,
    string LayerType, bool DownsampleInFirstStage);

/// <summary>Turns the initializers of an ONNX ResNet back into transformers-named weights.</summary>
internal static class OnnxResNetWeights
{
    private const double BatchNormEpsilon = 1e-5; // torch.nn.BatchNorm2d's default, which transformers' ResNet keeps

    /// <summary>Walks <paramref name="graph"/> as the header comment says and names every convolution and BatchNorm it meets.</summary>
    /// <exception cref="InvalidDataException">The graph is not a ResNet this library can rebuild; the message says where it differs.</exception>
    public static OnnxResNet Convert(OnnxGraph graph)
    {
        var initializers = graph.Initializers.ToDictionary(t => t.Name, StringComparer.Ordinal);
        var producers = new Dictionary<string, OnnxNode>(StringComparer.Ordinal);
        foreach (var node in graph.Nodes)
        {
            foreach (var output in node.Outputs) producers[output] = node;
        }
        OnnxNode? ProducerOf(string value) => producers.GetValueOrDefault(value);

        var weights = new Dictionary<string, torch.Tensor>(StringComparer.Ordinal);
        try
        {
            var stem = graph.Nodes.FirstOrDefault(n => n.OpType == "Conv" && ProducerOf(n.Inputs[0]) is null)
                ?? throw new InvalidDataException("The ONNX graph has no convolution on its input (the stem).");
            var stemNorm = graph.Nodes.FirstOrDefault(n => n.OpType == "BatchNormalization" && n.Inputs[0] == stem.Outputs[0])
                ?? throw new InvalidDataException($"The stem convolution '{stem.Name}' is not followed by a BatchNormalization.");
            var embedding = Add(weights, "resnet.embedder.embedder", stem, stemNorm, initializers);

            var hiddenSizes = new List<int>();
            var depths = new List<int>();
            string? layerType = null;
            var downsampleFirst = false;
            string? previousOutput = null;
            foreach (var add in graph.Nodes.Where(n => n.OpType == "Add" && n.Inputs.Count == 2 && n.Inputs.All(i => ProducerOf(i) is not null)))
            {
                var branches = add.Inputs.Select(i => Branch(i, ProducerOf)).ToArray();
                var mainIndex = branches[0].Pairs.Count >= branches[1].Pairs.Count ? 0 : 1;
                var (main, other) = (branches[mainIndex], branches[1 - mainIndex]);
                if (other.Pairs.Count > 1 || main.Pairs.Count is not (2 or 3) || other.Input != main.Input)
                {
                    throw new InvalidDataException(
                        $"The residual Add '{add.Name}' joins {main.Pairs.Count} and {other.Pairs.Count} convolutions from different inputs; " +
                        "a ResNet layer has 2 (basic) or 3 (bottleneck) on its main path and 0 or 1 on its shortcut, from one input.");
                }
                var type = main.Pairs.Count == 2 ? "basic" : "bottleneck";
                if (layerType is not null && layerType != type) throw new InvalidDataException($"The ONNX ResNet mixes basic and bottleneck layers (at '{add.Name}').");
                layerType = type;
                if (previousOutput is not null && main.Input != previousOutput)
                {
                    throw new InvalidDataException($"The residual layer ending in '{add.Name}' does not start where the previous one ended.");
                }
                previousOutput = graph.Nodes.FirstOrDefault(n => n.OpType == "Relu" && n.Inputs[0] == add.Outputs[0])?.Outputs[0]
                    ?? throw new InvalidDataException($"The residual Add '{add.Name}' is not followed by a Relu.");

                if (hiddenSizes.Count == 0 || other.Pairs.Count == 1)
                {
                    if (hiddenSizes.Count == 0) downsampleFirst = main.Pairs.Concat(other.Pairs).Any(p => Strides(p.Conv).Any(s => s != 1));
                    hiddenSizes.Add(0);
                    depths.Add(0);
                }
                var prefix = $"resnet.encoder.stages.{hiddenSizes.Count - 1}.layers.{depths[^1]}";
                for (var k = 0; k < main.Pairs.Count; k++)
                {
                    hiddenSizes[^1] = Add(weights, $"{prefix}.layer.{k}", main.Pairs[k].Conv, main.Pairs[k].Norm, initializers);
                }
                if (other.Pairs.Count == 1) Add(weights, $"{prefix}.shortcut", other.Pairs[0].Conv, other.Pairs[0].Norm, initializers);
                depths[^1]++;
            }
            if (layerType is null) throw new InvalidDataException("The ONNX graph has no residual Add: it is not a ResNet.");
            return new OnnxResNet(weights, embedding, hiddenSizes, depths, layerType, downsampleFirst);
        }
        catch
        {
            foreach (var tensor in weights.Values) tensor.Dispose();
            throw;
        }
    }

    /// <summary>The (Conv, BatchNormalization) pairs that lead to <paramref name="value"/>, first first, and the value they start from.</summary>
    private static (List<(OnnxNode Conv, OnnxNode Norm)> Pairs, string Input) Branch(string value, Func<string, OnnxNode?> producerOf)
    {
        var pairs = new List<(OnnxNode, OnnxNode)>();
        var current = value;
        while (producerOf(current) is { OpType: "BatchNormalization" } norm && producerOf(norm.Inputs[0]) is { OpType: "Conv" } conv)
        {
            pairs.Insert(0, (conv, norm));
            current = conv.Inputs[0];
            // Inside a layer a Relu follows each BatchNorm but the last; the Relu after a residual Add ends the walk.
            if (producerOf(current) is { OpType: "Relu" } relu && producerOf(relu.Inputs[0]) is { OpType: "BatchNormalization" } inner
                && producerOf(inner.Inputs[0]) is { OpType: "Conv" } && !IsStem(inner, producerOf))
            {
                current = relu.Inputs[0];
            }
            else
            {
                break;
            }
        }
        return (pairs, current);
    }

    private static bool IsStem(OnnxNode norm, Func<string, OnnxNode?> producerOf) =>
        producerOf(norm.Inputs[0]) is { } conv && producerOf(conv.Inputs[0]) is null;

    private static IReadOnlyList<long> Strides(OnnxNode conv) => conv.Ints("strides") ?? [1, 1];

    /// <summary>Adds <c>prefix.convolution.weight</c> and <c>prefix.normalization.*</c>; returns the output channels.</summary>
    private static int Add(Dictionary<string, torch.Tensor> weights, string prefix, OnnxNode conv, OnnxNode norm, Dictionary<string, OnnxTensor> initializers)
    {
        OnnxTensor Initializer(OnnxNode node, int input) =>
            node.Inputs.Count > input && initializers.TryGetValue(node.Inputs[input], out var tensor)
                ? tensor
                : throw new InvalidDataException($"ONNX {node.OpType} '{node.Name}': input {input} is not a constant weight.");

        var kernel = Initializer(conv, 1);
        if (kernel.Dims.Count != 4) throw new InvalidDataException($"ONNX Conv '{conv.Name}': weight has {kernel.Dims.Count} dimensions, not 4.");
        if (conv.Inputs.Count > 2) throw new InvalidDataException($"ONNX Conv '{conv.Name}' has a bias; transformers' ResNet convolutions have none.");
        CheckConvolution(conv, kernel.Dims[2], kernel.Dims[3]);
        var epsilon = norm.Float("epsilon", 1e-5f);
        if (Math.Abs(epsilon - BatchNormEpsilon) > 1e-9)
        {
            throw new InvalidDataException($"ONNX BatchNormalization '{norm.Name}' has epsilon {epsilon}; transformers' ResNet uses {BatchNormEpsilon}.");
        }
        weights[$"{prefix}.convolution.weight"] = kernel.ToTorch();
        string[] names = ["weight", "bias", "running_mean", "running_var"]; // BatchNormalization's inputs 1 to 4: scale, B, mean, var
        for (var i = 0; i < names.Length; i++)
        {
            var tensor = Initializer(norm, i + 1);
            if (tensor.Dims.Count != 1 || tensor.Dims[0] != kernel.Dims[0])
            {
                throw new InvalidDataException($"ONNX BatchNormalization '{norm.Name}': {names[i]} has shape [{string.Join(", ", tensor.Dims)}], not [{kernel.Dims[0]}].");
            }
            weights[$"{prefix}.normalization.{names[i]}"] = tensor.ToTorch();
        }
        weights[$"{prefix}.normalization.num_batches_tracked"] = torch.tensor(0L);
        return checked((int)kernel.Dims[0]);
    }

    /// <summary>
    /// Refuses what transformers' ResNetConvLayer cannot express: groups, dilation, or padding other than kernel / 2.
    /// An end padding one short of that is accepted: CNTK's "same" padding of a stride-2 convolution drops the last
    /// padded row and column, which no output reads when the input side is even (all ResNet stages at even sizes).
    /// </summary>
    private static void CheckConvolution(OnnxNode conv, long kernelHeight, long kernelWidth)
    {
        if (conv.Int("group", 1) != 1) throw new InvalidDataException($"ONNX Conv '{conv.Name}' is grouped; transformers' ResNet convolutions are not.");
        if (conv.Ints("dilations") is { } dilations && dilations.Any(d => d != 1)) throw new InvalidDataException($"ONNX Conv '{conv.Name}' is dilated.");
        var strides = Strides(conv);
        long[] kernel = [kernelHeight, kernelWidth];
        var pads = conv.Ints("pads") ?? [0, 0, 0, 0];
        for (var axis = 0; axis < 2; axis++)
        {
            var expected = kernel[axis] / 2;
            var (begin, end) = (pads[axis], pads[axis + 2]);
            if (begin != expected || !(end == expected || (strides[axis] == 2 && end == expected - 1)))
            {
                throw new InvalidDataException(
                    $"ONNX Conv '{conv.Name}' pads [{string.Join(", ", pads)}] for a {kernelHeight}×{kernelWidth} kernel; transformers' ResNet pads kernel / 2 = {expected} on each side.");
            }
        }
    }
}
