// The parts of an ONNX model (onnx/onnx.proto) needed to recover its weights: ModelProto.graph (7) →
// GraphProto.node (1) and .initializer (5); NodeProto input (1), output (2), name (3), op_type (4);
// AttributeProto name (1), f (2), i (3), ints (8); TensorProto dims (1), data_type (2), float_data (4), name (8), raw_data (9), data_location (14).
using System.Buffers.Binary;
using TorchSharp;

namespace Peft.Pretrained.Onnx;

/// <summary>One graph node: its operator, the value names it reads and writes, and its integer, integer-list and float attributes.</summary>
internal sealed record OnnxNode(
    string Name, string OpType, IReadOnlyList<string> Inputs, IReadOnlyList<string> Outputs, IReadOnlyDictionary<string, long> IntAttributes,
    IReadOnlyDictionary<string, IReadOnlyList<long>>? IntListAttributes = null, IReadOnlyDictionary<string, float>? FloatAttributes = null)
{
    /// <summary>The integer attribute <paramref name="name"/>, or <paramref name="fallback"/> when the node has none.</summary>
    public long Int(string name, long fallback) => IntAttributes.TryGetValue(name, out var value) ? value : fallback;

    /// <summary>The integer-list attribute <paramref name="name"/> (kernel_shape, strides, pads), or null when the node has none.</summary>
    public IReadOnlyList<long>? Ints(string name) => IntListAttributes is not null && IntListAttributes.TryGetValue(name, out var value) ? value : null;

    /// <summary>The float attribute <paramref name="name"/>, or <paramref name="fallback"/> when the node has none.</summary>
    public float Float(string name, float fallback) => FloatAttributes is not null && FloatAttributes.TryGetValue(name, out var value) ? value : fallback;
}

/// <summary>One initializer (a constant tensor of the graph, i.e. a weight).</summary>
internal sealed record OnnxTensor(
    string Name, IReadOnlyList<long> Dims, int DataType, ReadOnlyMemory<byte> RawData, IReadOnlyList<float> FloatData, IReadOnlyList<long> Int64Data)
{
    /// <summary>TensorProto.DataType.FLOAT.</summary>
    public const int Float = 1;

    /// <summary>TensorProto.DataType.INT64.</summary>
    public const int Int64 = 7;

    /// <summary>The number of elements the dims describe.</summary>
    public long ElementCount => Dims.Aggregate(1L, (a, b) => a * b);

    /// <summary>The values of a FLOAT tensor, from <c>raw_data</c> (little-endian) or <c>float_data</c>.</summary>
    /// <exception cref="InvalidDataException">The tensor is not FLOAT, or its data does not match its dims.</exception>
    public float[] ToFloats()
    {
        if (DataType != Float)
        {
            throw new InvalidDataException($"ONNX initializer '{Name}' has data type {DataType}, not FLOAT (1).");
        }
        var count = checked((int)ElementCount);
        if (RawData.Length > 0)
        {
            if (RawData.Length != count * 4)
            {
                throw new InvalidDataException($"ONNX initializer '{Name}': raw_data holds {RawData.Length} bytes, dims [{string.Join(", ", Dims)}] need {count * 4}.");
            }
            var values = new float[count];
            var span = RawData.Span;
            for (var i = 0; i < count; i++)
            {
                values[i] = BinaryPrimitives.ReadSingleLittleEndian(span.Slice(4 * i, 4));
            }
            return values;
        }
        if (FloatData.Count != count)
        {
            throw new InvalidDataException($"ONNX initializer '{Name}': float_data holds {FloatData.Count} values, dims [{string.Join(", ", Dims)}] need {count}.");
        }
        return [.. FloatData];
    }

    /// <summary>The tensor as a new float32 CPU TorchSharp tensor of shape <see cref="Dims"/>.</summary>
    public torch.Tensor ToTorch() => torch.tensor(ToFloats(), [.. Dims], torch.float32);

    /// <summary>An INT64 tensor as a new int64 CPU TorchSharp tensor of shape <see cref="Dims"/>.</summary>
    /// <exception cref="InvalidDataException">The tensor is not INT64, or its data does not match its dims.</exception>
    public torch.Tensor ToTorchInt64()
    {
        if (DataType != Int64)
        {
            throw new InvalidDataException($"ONNX initializer '{Name}' has data type {DataType}, not INT64 (7).");
        }
        var count = checked((int)ElementCount);
        long[] values;
        if (RawData.Length > 0)
        {
            if (RawData.Length != count * 8)
            {
                throw new InvalidDataException($"ONNX initializer '{Name}': raw_data holds {RawData.Length} bytes, dims [{string.Join(", ", Dims)}] need {count * 8}.");
            }
            values = new long[count];
            for (var i = 0; i < count; i++)
            {
                values[i] = BinaryPrimitives.ReadInt64LittleEndian(RawData.Span.Slice(8 * i, 8));
            }
        }
        else if (Int64Data.Count == count)
        {
            values = [.. Int64Data];
        }
        else
        {
            throw new InvalidDataException($"ONNX initializer '{Name}': int64_data holds {Int64Data.Count} values, dims [{string.Join(", ", Dims)}] need {count}.");
        }
        return torch.tensor(values, [.. Dims], torch.int64);
    }
}

/// <summary>The main graph of an ONNX model: nodes in order and initializers by name.</summary>
internal sealed class OnnxGraph
{
    /// <summary>A graph from parts (for <see cref="Parse"/> and tests).</summary>
    internal OnnxGraph(IReadOnlyList<OnnxNode> nodes, IReadOnlyList<OnnxTensor> initializers)
    {
        Nodes = nodes;
        Initializers = initializers;
    }

    /// <summary>The nodes, in graph order.</summary>
    public IReadOnlyList<OnnxNode> Nodes { get; }

    /// <summary>The initializers, in file order.</summary>
    public IReadOnlyList<OnnxTensor> Initializers { get; }

    /// <summary>Parses a serialized ModelProto. Tensor bytes stay slices of <paramref name="model"/>.</summary>
    /// <exception cref="InvalidDataException">The bytes are not a model with a graph, or a tensor keeps its data externally.</exception>
    public static OnnxGraph Parse(ReadOnlyMemory<byte> model)
    {
        var reader = new ProtoReader(model);
        ReadOnlyMemory<byte>? graph = null;
        while (reader.Next())
        {
            if (reader.Field == 7 && reader.Wire == WireType.LengthDelimited) graph = reader.Bytes();
            else reader.Skip();
        }
        if (graph is null) throw new InvalidDataException("The ONNX model has no graph (ModelProto field 7).");

        var nodes = new List<OnnxNode>();
        var initializers = new List<OnnxTensor>();
        reader = new ProtoReader(graph.Value);
        while (reader.Next())
        {
            switch (reader.Field)
            {
                case 1: nodes.Add(ParseNode(reader.Bytes())); break;
                case 5: initializers.Add(ParseTensor(reader.Bytes())); break;
                default: reader.Skip(); break;
            }
        }
        return new OnnxGraph(nodes, initializers);
    }

    private static OnnxNode ParseNode(ReadOnlyMemory<byte> bytes)
    {
        var reader = new ProtoReader(bytes);
        var inputs = new List<string>();
        var outputs = new List<string>();
        var attributes = new Dictionary<string, long>(StringComparer.Ordinal);
        var lists = new Dictionary<string, IReadOnlyList<long>>(StringComparer.Ordinal);
        var floats = new Dictionary<string, float>(StringComparer.Ordinal);
        string name = "", opType = "";
        while (reader.Next())
        {
            switch (reader.Field)
            {
                case 1: inputs.Add(reader.String()); break;
                case 2: outputs.Add(reader.String()); break;
                case 3: name = reader.String(); break;
                case 4: opType = reader.String(); break;
                case 5: ParseAttribute(reader.Bytes(), attributes, lists, floats); break;
                default: reader.Skip(); break;
            }
        }
        return new OnnxNode(name, opType, inputs, outputs, attributes, lists, floats);
    }

    private static void ParseAttribute(ReadOnlyMemory<byte> bytes, Dictionary<string, long> attributes,
        Dictionary<string, IReadOnlyList<long>> lists, Dictionary<string, float> floats)
    {
        var reader = new ProtoReader(bytes);
        string? name = null;
        long? value = null;
        float? number = null;
        var ints = new List<long>();
        while (reader.Next())
        {
            switch (reader.Field)
            {
                case 1: name = reader.String(); break;
                case 2 when reader.Wire == WireType.Fixed32: number = reader.Float(); break;
                case 3 when reader.Wire == WireType.Varint: value = reader.Int64(); break;
                case 8: reader.Int64s(ints); break;
                default: reader.Skip(); break;
            }
        }
        if (name is null) return;
        if (value is not null) attributes[name] = value.Value;
        if (number is not null) floats[name] = number.Value;
        if (ints.Count > 0) lists[name] = ints;
    }

    private static OnnxTensor ParseTensor(ReadOnlyMemory<byte> bytes)
    {
        var reader = new ProtoReader(bytes);
        var dims = new List<long>();
        var floats = new List<float>();
        var longs = new List<long>();
        var dataType = 0;
        var name = "";
        var raw = ReadOnlyMemory<byte>.Empty;
        var external = false;
        while (reader.Next())
        {
            switch (reader.Field)
            {
                case 1: reader.Int64s(dims); break;
                case 2: dataType = checked((int)reader.Int64()); break;
                case 4: reader.Floats(floats); break;
                case 7: reader.Int64s(longs); break;
                case 8: name = reader.String(); break;
                case 9: raw = reader.Bytes(); break;
                case 14: external = reader.Int64() == 1; break;
                default: reader.Skip(); break;
            }
        }
        if (external)
        {
            throw new InvalidDataException($"ONNX initializer '{name}' keeps its data in an external file, which is not supported.");
        }
        return new OnnxTensor(name, dims, dataType, raw, floats, longs);
    }
}
