using Peft.Quantization;
using TorchSharp;

namespace Peft.Modeling;

/// <summary>
/// Quantize-on-load, the counterpart of transformers' <c>BitsAndBytesConfig</c>: the Linear layers of the model body are
/// stored in 8 or 4 bits as bitsandbytes stores them and dequantized per layer when used. Output heads and the
/// modules named in <see cref="LlmInt8SkipModules"/> stay in floating point, as the reference keeps them.
/// </summary>
public sealed record QuantizationOptions
{
    /// <summary><c>load_in_8bit</c>: LLM.int8 row-wise storage.</summary>
    public bool LoadIn8Bit { get; init; }

    /// <summary><c>load_in_4bit</c>: 4-bit blockwise storage (<see cref="Bnb4BitQuantType"/>).</summary>
    public bool LoadIn4Bit { get; init; }

    /// <summary><c>bnb_4bit_quant_type</c>: <c>fp4</c> (transformers' default) or <c>nf4</c>.</summary>
    public string Bnb4BitQuantType { get; init; } = "fp4";

    /// <summary><c>bnb_4bit_use_double_quant</c>: quantize the absmax values too (block 256, about 0.37 bits per weight saved).</summary>
    public bool Bnb4BitUseDoubleQuant { get; init; }

    /// <summary><c>bnb_4bit_compute_dtype</c>: what 4-bit layers compute in (float32 by default, as transformers; or bfloat16, float16).</summary>
    public ModelDType Bnb4BitComputeDType { get; init; } = ModelDType.Float32;

    /// <summary><c>llm_int8_skip_modules</c>: module names (a name, or a dotted path's tail) kept in floating point, besides the heads.</summary>
    public IReadOnlyList<string> LlmInt8SkipModules { get; init; } = [];

    /// <summary>4-bit NF4 with double quantization and a bfloat16 compute dtype: QLoRA's recipe.</summary>
    public static QuantizationOptions QLoRA { get; } = new() { LoadIn4Bit = true, Bnb4BitQuantType = "nf4", Bnb4BitUseDoubleQuant = true, Bnb4BitComputeDType = ModelDType.BFloat16 };

    /// <summary>The storage format these options ask for.</summary>
    /// <exception cref="ArgumentException">The options contradict each other (see <see cref="Validate"/>).</exception>
    public QuantType Type
    {
        get
        {
            Validate();
            return LoadIn8Bit ? QuantType.Int8 : QuantTypes.Parse(Bnb4BitQuantType);
        }
    }

    /// <summary>Checks the options, naming the fields in conflict.</summary>
    /// <exception cref="ArgumentException">Neither or both of load_in_8bit and load_in_4bit, an unknown quant type, an Auto compute dtype, or 4-bit-only options with load_in_8bit.</exception>
    public void Validate()
    {
        if (LoadIn8Bit == LoadIn4Bit)
        {
            throw new ArgumentException(LoadIn8Bit
                ? "load_in_8bit and load_in_4bit are both set; choose one."
                : "QuantizationOptions needs load_in_8bit or load_in_4bit.");
        }
        var type = QuantTypes.Parse(Bnb4BitQuantType);
        if (type == QuantType.Int8) throw new ArgumentException("bnb_4bit_quant_type 'int8' is not a 4-bit type (nf4, fp4); use load_in_8bit.");
        if (Bnb4BitComputeDType == ModelDType.Auto) throw new ArgumentException("bnb_4bit_compute_dtype must be float32, bfloat16 or float16, not auto.");
        if (LoadIn8Bit && Bnb4BitUseDoubleQuant) throw new ArgumentException("bnb_4bit_use_double_quant applies to load_in_4bit, not load_in_8bit.");
    }

    /// <summary>The compute dtype of 4-bit layers.</summary>
    internal torch.ScalarType ComputeScalarType => Bnb4BitComputeDType switch
    {
        ModelDType.BFloat16 => torch.ScalarType.BFloat16,
        ModelDType.Float16 => torch.ScalarType.Float16,
        _ => torch.ScalarType.Float32,
    };
}
