// bitsandbytes' QuantState (bitsandbytes/functional.py at commit 95f9af3: quantize_4bit,
// dequantize_4bit, QuantState.as_dict / from_dict, and utils.py pack_dict_to_tensor).
using System.Globalization;
using System.Text;
using System.Text.Json;
using TorchSharp;
using static TorchSharp.torch;

namespace Peft.Quantization;

/// <summary>
/// What a 4-bit weight needs besides its packed bytes: the code table, the absmax of each block of
/// <see cref="BlockSize"/> values and, with double quantization, those absmax values themselves quantized
/// (their mean <see cref="Offset"/> subtracted, then 8-bit blockwise in blocks of 256 against the dynamic map).
/// </summary>
public sealed class QuantState4Bit : IDisposable
{
    private QuantState4Bit(QuantType type, int blockSize, long[] shape, ScalarType dtype, Tensor absmax, Tensor code)
    {
        Type = type;
        BlockSize = blockSize;
        Shape = shape;
        DType = dtype;
        Absmax = absmax;
        Code = code;
    }

    /// <summary>nf4 or fp4.</summary>
    public QuantType Type { get; }

    /// <summary>Values per absmax (64 by default).</summary>
    public int BlockSize { get; }

    /// <summary>The weight's shape before packing.</summary>
    public long[] Shape { get; }

    /// <summary>The dtype the weight had when it was quantized (bitsandbytes dequantizes into it).</summary>
    public ScalarType DType { get; }

    /// <summary>float32 per block, or uint8 codes when <see cref="Nested"/>.</summary>
    public Tensor Absmax { get; private set; }

    /// <summary>The 16 float32 values of the 4-bit code (<c>quant_map</c>).</summary>
    public Tensor Code { get; }

    /// <summary>Whether the absmax values are quantized again (double quantization).</summary>
    public bool Nested => NestedAbsmax is not null;

    /// <summary>The mean subtracted from the absmax values before their quantization.</summary>
    public float Offset { get; private set; }

    /// <summary>float32 absmax of each block of 256 absmax values.</summary>
    public Tensor? NestedAbsmax { get; private set; }

    /// <summary>The 256-value dynamic map the absmax values are quantized against.</summary>
    public Tensor? NestedCode { get; private set; }

    /// <summary>The block size of the nested quantization (256).</summary>
    public int NestedBlockSize { get; private set; } = Blockwise.NestedBlockSize;

    /// <summary>
    /// Quantizes <paramref name="weight"/> as <c>bnb.functional.quantize_4bit</c>: returns the packed bytes and the state.
    /// With <paramref name="doubleQuant"/> (<c>compress_statistics</c>), <c>offset = absmax.mean()</c> and
    /// <c>absmax - offset</c> is quantized blockwise (256) against the dynamic map.
    /// </summary>
    public static (Tensor Packed, QuantState4Bit State) Quantize(Tensor weight, QuantType type, bool doubleQuant, int blockSize = Blockwise.DefaultBlockSize)
    {
        if (!weight.dtype.IsFloatingPointType() || weight.dtype == ScalarType.Float64)
        {
            throw new ArgumentException($"4-bit quantization takes float32, bfloat16 or float16 weights, not {weight.dtype} (as bitsandbytes).", nameof(weight));
        }
        using var noGrad = torch.no_grad();
        var (packed, absmax) = Blockwise.Quantize4Bit(weight, type, blockSize);
        var code = tensor(Codebooks.FourBit(type).ToArray(), device: weight.device);
        var state = new QuantState4Bit(type, blockSize, weight.shape, weight.dtype, absmax, code);
        if (doubleQuant)
        {
            using var scope = NewDisposeScope();
            var offset = absmax.mean();
            var dynamic = Codebooks.DynamicMap().to(weight.device);
            var (q, nestedAbsmax) = Blockwise.QuantizeBlockwise(absmax - offset, dynamic);
            state.Offset = offset.item<float>();
            state.Absmax = q.MoveToOuterDisposeScope();
            state.NestedAbsmax = nestedAbsmax.MoveToOuterDisposeScope();
            state.NestedCode = dynamic.MoveToOuterDisposeScope();
            absmax.Dispose();
        }
        return (packed, state);
    }

    /// <summary>The float32 absmax of every block: stored, or dequantized from the nested state plus the offset.</summary>
    public Tensor BlockAbsmax()
    {
        if (!Nested) return Absmax.alias();
        using var scope = NewDisposeScope();
        var absmax = Blockwise.DequantizeBlockwise(Absmax, NestedAbsmax!, NestedCode!, NestedBlockSize) + Offset;
        return absmax.MoveToOuterDisposeScope();
    }

    /// <summary>dequantize_4bit: the weight in <see cref="DType"/> (as bitsandbytes), then <paramref name="dtype"/>.</summary>
    public Tensor Dequantize(Tensor packed, ScalarType dtype)
    {
        using var scope = NewDisposeScope();
        var absmax = BlockAbsmax();
        var weight = Blockwise.Dequantize4Bit(packed, absmax, Code, Shape, DType, BlockSize).to(dtype);
        return weight.MoveToOuterDisposeScope();
    }

    /// <summary>Bytes held by the state's tensors (absmax, code and the nested ones).</summary>
    public long Bytes => new[] { Absmax, Code, NestedAbsmax, NestedCode }.Sum(t => t is null ? 0 : t.numel() * t.ElementSize);

    /// <summary>
    /// The tensors bitsandbytes' <c>Linear4bit._save_to_state_dict</c> writes beside <c>weight</c>, under
    /// <paramref name="weightKey"/> + "." : <c>absmax</c>, <c>quant_map</c>, with double quantization
    /// <c>nested_absmax</c> and <c>nested_quant_map</c>, and <c>quant_state.bitsandbytes__nf4</c> (or <c>__fp4</c>):
    /// the other fields as <c>json.dumps</c> text in uint8 (<c>pack_dict_to_tensor</c>).
    /// </summary>
    public Dictionary<string, Tensor> ToStateDict(string weightKey)
    {
        var result = new Dictionary<string, Tensor>(StringComparer.Ordinal)
        {
            [weightKey + ".absmax"] = Absmax,
            [weightKey + ".quant_map"] = Code,
        };
        if (Nested)
        {
            result[weightKey + ".nested_absmax"] = NestedAbsmax!;
            result[weightKey + ".nested_quant_map"] = NestedCode!;
        }
        var json = PackedJson();
        result[weightKey + ".quant_state.bitsandbytes__" + Type.Name()] = tensor(Encoding.UTF8.GetBytes(json), dtype: ScalarType.Byte);
        return result;
    }

    /// <summary>
    /// The non-tensor fields as Python's <c>json.dumps</c> writes them (", " and ": " separators, insertion order:
    /// quant_type, blocksize, dtype, shape, then nested_blocksize, nested_dtype, nested_offset).
    /// </summary>
    internal string PackedJson()
    {
        var culture = CultureInfo.InvariantCulture;
        var text = new StringBuilder();
        text.Append(culture, $"{{\"quant_type\": \"{Type.Name()}\", \"blocksize\": {BlockSize}, \"dtype\": \"{DTypeName(DType)}\", \"shape\": [{string.Join(", ", Shape)}]");
        if (Nested)
        {
            text.Append(culture, $", \"nested_blocksize\": {NestedBlockSize}, \"nested_dtype\": \"float32\", \"nested_offset\": {PythonFloat(Offset)}");
        }
        return text.Append('}').ToString();
    }

    /// <summary>
    /// QuantState.from_dict: reads the state of the weight stored under <paramref name="weightKey"/> through
    /// <paramref name="read"/> (null when a key is absent), onto <paramref name="device"/>.
    /// </summary>
    /// <exception cref="FormatException">The packed quant_state is missing, ambiguous or malformed.</exception>
    public static QuantState4Bit FromStateDict(string weightKey, Func<string, Tensor?> read, Device device)
    {
        Tensor? packed = null;
        string? typeName = null;
        foreach (var name in (string[])["nf4", "fp4"])
        {
            if (read(weightKey + ".quant_state.bitsandbytes__" + name) is { } t)
            {
                if (packed is not null) throw new FormatException($"{weightKey}: both bitsandbytes__nf4 and bitsandbytes__fp4 quant states are present.");
                (packed, typeName) = (t, name);
            }
        }
        if (packed is null) throw new FormatException($"{weightKey}: no quant_state.bitsandbytes__nf4 or __fp4 entry beside {weightKey}.absmax.");
        byte[] json;
        using (packed) json = packed.data<byte>().ToArray();
        using var document = JsonDocument.Parse(json);
        var root = document.RootElement;
        string Text(string key) => root.TryGetProperty(key, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString()!
            : throw new FormatException($"{weightKey}: quant_state lacks the string '{key}'.");
        int Int(string key) => root.TryGetProperty(key, out var v) && v.ValueKind == JsonValueKind.Number ? v.GetInt32()
            : throw new FormatException($"{weightKey}: quant_state lacks the integer '{key}'.");
        var type = QuantTypes.Parse(Text("quant_type"));
        if (type.Name() != typeName) throw new FormatException($"{weightKey}: quant_state key says {typeName} but its quant_type is {type.Name()}.");
        if (!root.TryGetProperty("shape", out var shapeElement) || shapeElement.ValueKind != JsonValueKind.Array)
        {
            throw new FormatException($"{weightKey}: quant_state lacks the shape.");
        }
        var shape = shapeElement.EnumerateArray().Select(e => e.GetInt64()).ToArray();
        var absmax = read(weightKey + ".absmax") ?? throw new FormatException($"{weightKey}.absmax is missing.");
        var code = read(weightKey + ".quant_map") ?? throw new FormatException($"{weightKey}.quant_map is missing.");
        var state = new QuantState4Bit(type, Int("blocksize"), shape, ParseDType(Text("dtype"), weightKey), absmax.to(device), code.to(ScalarType.Float32).to(device));
        Blockwise.CheckBlockSize(state.BlockSize);
        if (read(weightKey + ".nested_absmax") is { } nestedAbsmax)
        {
            var nestedCode = read(weightKey + ".nested_quant_map") ?? throw new FormatException($"{weightKey}.nested_quant_map is missing.");
            state.NestedAbsmax = nestedAbsmax.to(ScalarType.Float32).to(device);
            state.NestedCode = nestedCode.to(ScalarType.Float32).to(device);
            state.NestedBlockSize = Int("nested_blocksize");
            state.Offset = root.TryGetProperty("nested_offset", out var o) && o.ValueKind == JsonValueKind.Number ? o.GetSingle()
                : throw new FormatException($"{weightKey}: quant_state lacks nested_offset.");
        }
        var blocks = (shape.Aggregate(1L, (a, b) => a * b) + state.BlockSize - 1) / state.BlockSize;
        if (state.Absmax.numel() != blocks)
        {
            throw new FormatException($"{weightKey}.absmax has {state.Absmax.numel()} values; shape [{string.Join(", ", shape)}] in blocks of {state.BlockSize} needs {blocks}.");
        }
        return state;
    }

    /// <summary>Takes the state's tensors out of any dispose scope, for a layer that keeps them.</summary>
    public void DetachFromDisposeScope()
    {
        foreach (var t in new[] { Absmax, Code, NestedAbsmax, NestedCode }) t?.DetachFromDisposeScope();
    }

    /// <inheritdoc />
    public void Dispose()
    {
        Absmax.Dispose();
        Code.Dispose();
        NestedAbsmax?.Dispose();
        NestedCode?.Dispose();
    }

    private static string DTypeName(ScalarType dtype) => dtype switch
    {
        ScalarType.Float32 => "float32",
        ScalarType.BFloat16 => "bfloat16",
        ScalarType.Float16 => "float16",
        _ => throw new ArgumentOutOfRangeException(nameof(dtype), dtype, "not a 4-bit source dtype"),
    };

    private static ScalarType ParseDType(string name, string key) => name switch
    {
        "float32" => ScalarType.Float32,
        "bfloat16" => ScalarType.BFloat16,
        "float16" => ScalarType.Float16,
        _ => throw new FormatException($"{key}: quant_state dtype '{name}' is not float32, bfloat16 or float16."),
    };

    // Python's repr of the double a float32 .item() gives: shortest round-trip digits, with a '.0' or exponent as Python writes it.
    private static string PythonFloat(float value)
    {
        var text = ((double)value).ToString("R", CultureInfo.InvariantCulture);
        if (text.Contains('E'))
        {
            var parts = text.Split('E');
            var exponent = int.Parse(parts[1], CultureInfo.InvariantCulture);
            return $"{parts[0]}e{(exponent < 0 ? "-" : "+")}{Math.Abs(exponent):00}";
        }
        return text.Contains('.') ? text : text + ".0";
    }
}
