namespace Peft.Quantization;

/// <summary>The storage formats of a quantized frozen weight, as bitsandbytes names them.</summary>
public enum QuantType
{
    /// <summary>LLM.int8 storage: int8 weights with one absmax scale per output row (<c>SCB</c>).</summary>
    Int8,

    /// <summary>4-bit NormalFloat (QLoRA), blocks of 64 values sharing an absmax.</summary>
    Nf4,

    /// <summary>4-bit float (1 sign, 2 exponent, 1 mantissa bit), blocks of 64 values sharing an absmax.</summary>
    Fp4,
}

/// <summary>Names of <see cref="QuantType"/> as bitsandbytes and the CLI spell them.</summary>
public static class QuantTypes
{
    /// <summary>The bitsandbytes name: <c>int8</c>, <c>nf4</c>, <c>fp4</c>.</summary>
    public static string Name(this QuantType type) => type switch
    {
        QuantType.Int8 => "int8",
        QuantType.Nf4 => "nf4",
        QuantType.Fp4 => "fp4",
        _ => throw new ArgumentOutOfRangeException(nameof(type)),
    };

    /// <summary>Parses <c>int8</c>, <c>nf4</c> or <c>fp4</c> (any case).</summary>
    /// <exception cref="ArgumentException">Any other name.</exception>
    public static QuantType Parse(string name) => name.Trim().ToLowerInvariant() switch
    {
        "int8" => QuantType.Int8,
        "nf4" => QuantType.Nf4,
        "fp4" => QuantType.Fp4,
        _ => throw new ArgumentException($"quantization type '{name}' is not one of int8, nf4, fp4.", nameof(name)),
    };
}
