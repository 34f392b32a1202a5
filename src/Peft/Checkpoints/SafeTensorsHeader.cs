namespace Peft.Checkpoints;

/// <summary>The parsed and validated header of a safetensors file.</summary>
/// <param name="Tensors">Every tensor entry by name (the <c>__metadata__</c> entry excluded).</param>
/// <param name="Metadata">The string-to-string <c>__metadata__</c> entry; empty when the file has none.</param>
/// <param name="DataOffset">The absolute file position where the data area (offset 0 of every entry) starts: 8 + header length.</param>
public sealed record SafeTensorsHeader(IReadOnlyDictionary<string, SafeTensorInfo> Tensors, IReadOnlyDictionary<string, string> Metadata, long DataOffset);

/// <summary>One tensor entry of a safetensors header.</summary>
/// <param name="Name">The tensor key.</param>
/// <param name="DType">The safetensors dtype name: F32, F16, BF16, F64, I64, I32, I16, I8, U8 or BOOL.</param>
/// <param name="Shape">The dimensions (empty for a scalar).</param>
/// <param name="Begin">Start of the bytes, relative to the data area.</param>
/// <param name="End">End (exclusive) of the bytes, relative to the data area.</param>
public sealed record SafeTensorInfo(string Name, string DType, IReadOnlyList<long> Shape, long Begin, long End);
