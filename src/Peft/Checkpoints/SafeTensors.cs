using System.Buffers.Binary;
using System.Text.Encodings.Web;
using System.Text.Json;
using Microsoft.Win32.SafeHandles;
using TorchSharp;

namespace Peft.Checkpoints;

/// <summary>
/// Reads and writes the safetensors format (https://github.com/huggingface/safetensors): an 8-byte little-endian
/// header length, a JSON header, then the raw little-endian tensor bytes.
/// </summary>
/// <remarks>
/// Written here rather than taken from TorchSharp.PyBridge 1.4.4: PyBridge's safetensors reader/writer is internal
/// (only <c>Module.load_safetensors</c>/<c>save_safetensors</c>/<c>load_checkpoint</c> are public, and they need a
/// module whose state dict already has every key), it drops <c>__metadata__</c> on read and cannot write it, does not
/// validate the header at all (offsets, overlaps, sizes, header bound), cannot save shards, writes the header length
/// as a character count rather than UTF-8 bytes, and neither pads nor sorts the header like the Python writer. Its
/// dtype table (F64/F32/F16/BF16/I64/I32/I16/I8/U8/BOOL) is the one used here.
/// </remarks>
public static class SafeTensors
{
    /// <summary>The largest header accepted, as in the reference implementation (100 MB).</summary>
    public const long MaxHeaderBytes = 100_000_000;

    private const string MetadataKey = "__metadata__";
    private const int ChunkBytes = 1 << 30;

    /// <summary>Reads and validates the header only; no tensor data is read or allocated.</summary>
    /// <param name="path">The safetensors file.</param>
    /// <returns>The validated header.</returns>
    /// <exception cref="CheckpointException">The file is missing, unreadable or its header is invalid.</exception>
    public static SafeTensorsHeader ReadHeader(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        using var handle = Open(path);
        return ReadHeader(path, handle);
    }

    /// <summary>Loads every tensor, on the CPU and in its stored dtype, by name (in header order).</summary>
    /// <param name="path">The safetensors file.</param>
    /// <returns>The tensors; the caller owns (and disposes) them.</returns>
    /// <exception cref="CheckpointException">The file is missing, unreadable, truncated or its header is invalid.</exception>
    public static Dictionary<string, torch.Tensor> Load(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        using var handle = Open(path);
        var header = ReadHeader(path, handle);
        return LoadTensors(path, handle, header, header.Tensors.Keys);
    }

    /// <summary>
    /// Writes <paramref name="tensors"/> (any safetensors dtype, any device) with optional string metadata, stored as
    /// <c>__metadata__</c>. Entries are ordered as the Python writer orders them (dtype, larger first, then name) and
    /// the header is padded with spaces to a multiple of 8 bytes. The file is written to a temporary name and moved
    /// into place, so a failed save leaves any previous file intact.
    /// </summary>
    /// <param name="path">The file to write (its directory is created if needed).</param>
    /// <param name="tensors">The tensors by name; names must be unique.</param>
    /// <param name="metadata">Optional <c>__metadata__</c> strings (e.g. <c>{"format": "pt"}</c>).</param>
    /// <exception cref="CheckpointException">A name is duplicated or reserved, a dtype has no safetensors name, or the file cannot be written.</exception>
    public static void Save(string path, IEnumerable<KeyValuePair<string, torch.Tensor>> tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        ArgumentNullException.ThrowIfNull(path);
        ArgumentNullException.ThrowIfNull(tensors);

        var entries = new List<(string Name, string DType, torch.Tensor Tensor, long Bytes)>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var (name, tensor) in tensors)
        {
            if (name is null)
            {
                throw new CheckpointException(path, null, "a tensor has a null name.");
            }
            if (tensor is null)
            {
                throw new CheckpointException(path, name, "the tensor is null.");
            }
            if (name == MetadataKey)
            {
                throw new CheckpointException(path, name, $"'{MetadataKey}' is reserved for the metadata and cannot name a tensor.");
            }
            if (!seen.Add(name))
            {
                throw new CheckpointException(path, name, "the name appears more than once.");
            }
            var dtype = SafeTensorsDTypes.NameOf(tensor.dtype)
                ?? throw new CheckpointException(path, name, $"dtype {tensor.dtype} has no safetensors equivalent (supported: {string.Join(", ", SafeTensorsDTypes.Names)}).");
            entries.Add((name, dtype, tensor, tensor.NumberOfElements * tensor.ElementSize));
        }

        entries.Sort((a, b) =>
        {
            var byType = SafeTensorsDTypes.Rank(b.DType).CompareTo(SafeTensorsDTypes.Rank(a.DType));
            return byType != 0 ? byType : string.CompareOrdinal(a.Name, b.Name);
        });

        var headerBytes = BuildHeader(entries.Select(e => (e.Name, e.DType, e.Tensor.shape, e.Bytes)), metadata);

        var directory = Path.GetDirectoryName(Path.GetFullPath(path));
        var temporary = Path.Combine(directory ?? ".", $".{Path.GetFileName(path)}.{Guid.NewGuid():N}.tmp");
        try
        {
            if (directory is not null)
            {
                Directory.CreateDirectory(directory);
            }
            using (var stream = new FileStream(temporary, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 20))
            {
                Span<byte> length = stackalloc byte[8];
                BinaryPrimitives.WriteUInt64LittleEndian(length, (ulong)headerBytes.Length);
                stream.Write(length);
                stream.Write(headerBytes);
                foreach (var entry in entries)
                {
                    WriteTensorBytes(stream, entry.Tensor);
                }
            }
            File.Move(temporary, path, overwrite: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or NotSupportedException or ArgumentException)
        {
            TryDelete(temporary);
            throw new CheckpointException(path, null, $"cannot be written: {e.Message}", e);
        }
        catch
        {
            TryDelete(temporary);
            throw;
        }
    }

    internal static SafeFileHandle Open(string path)
    {
        if (!File.Exists(path))
        {
            throw new CheckpointException(path, null, Directory.Exists(path) ? "is a directory, not a safetensors file." : "file not found.");
        }
        FileKind.EnsureRegularFile(path);
        try
        {
            return File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.Read, FileOptions.RandomAccess);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new CheckpointException(path, null, $"cannot be opened: {e.Message}", e);
        }
    }

    internal static SafeTensorsHeader ReadHeader(string path, SafeFileHandle handle)
    {
        try
        {
            return ParseHeader(path, handle);
        }
        catch (IOException e)
        {
            throw new CheckpointException(path, null, $"cannot be read: {e.Message}", e);
        }
    }

    internal static Dictionary<string, torch.Tensor> LoadTensors(string path, SafeFileHandle handle, SafeTensorsHeader header, IEnumerable<string> names)
    {
        if (!BitConverter.IsLittleEndian)
        {
            // safetensors data is little-endian; the bytes are copied as they are.
            throw new CheckpointException(path, null, "loading safetensors requires a little-endian machine.");
        }
        var result = new Dictionary<string, torch.Tensor>(StringComparer.Ordinal);
        try
        {
            foreach (var name in names)
            {
                var info = header.Tensors[name];
                SafeTensorsDTypes.TryGet(info.DType, out var type, out _);
                var tensor = torch.empty(info.Shape.ToArray(), dtype: type, device: torch.CPU);
                result.Add(name, tensor);
                ReadTensorBytes(path, name, handle, tensor, header.DataOffset + info.Begin, info.End - info.Begin);
            }
            return result;
        }
        catch (Exception e)
        {
            foreach (var tensor in result.Values)
            {
                tensor.Dispose();
            }
            if (e is IOException or UnauthorizedAccessException)
            {
                throw new CheckpointException(path, null, $"cannot be read: {e.Message}", e);
            }
            throw;
        }
    }

    private static SafeTensorsHeader ParseHeader(string path, SafeFileHandle handle)
    {
        var fileLength = RandomAccess.GetLength(handle);
        if (fileLength < 8)
        {
            throw new CheckpointException(path, null, $"truncated: {fileLength} bytes, fewer than the 8-byte header length.");
        }
        Span<byte> lengthBytes = stackalloc byte[8];
        ReadExactly(path, handle, lengthBytes, 0);
        var declared = BinaryPrimitives.ReadUInt64LittleEndian(lengthBytes);
        if (declared > MaxHeaderBytes)
        {
            throw new CheckpointException(path, null, $"header length {declared} exceeds the {MaxHeaderBytes}-byte bound.");
        }
        var headerLength = (long)declared;
        if (8 + headerLength > fileLength)
        {
            throw new CheckpointException(path, null, $"truncated: header length {headerLength} exceeds the file size ({fileLength} bytes).");
        }
        var headerBytes = new byte[headerLength];
        ReadExactly(path, handle, headerBytes, 8);

        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(headerBytes);
        }
        catch (Exception e) when (e is JsonException or ArgumentException)
        {
            throw new CheckpointException(path, null, $"header is not valid JSON: {e.Message}", e);
        }

        var dataOffset = 8 + headerLength;
        var dataLength = fileLength - dataOffset;
        using (document)
        {
            var root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
            {
                throw new CheckpointException(path, null, $"header is a JSON {root.ValueKind}, not an object.");
            }
            var tensors = new Dictionary<string, SafeTensorInfo>(StringComparer.Ordinal);
            var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
            var sawMetadata = false;
            foreach (var property in root.EnumerateObject())
            {
                if (property.Name == MetadataKey)
                {
                    if (sawMetadata)
                    {
                        throw new CheckpointException(path, null, $"header has '{MetadataKey}' more than once.");
                    }
                    sawMetadata = true;
                    ParseMetadata(path, property.Value, metadata);
                    continue;
                }
                var info = ParseEntry(path, property.Name, property.Value, dataLength);
                if (!tensors.TryAdd(info.Name, info))
                {
                    throw new CheckpointException(path, info.Name, "the key appears more than once in the header.");
                }
            }

            CheckContiguous(path, tensors.Values, dataLength);
            return new SafeTensorsHeader(tensors, metadata, dataOffset);
        }
    }

    /// <summary>
    /// The data area must be the tensors back to back from byte 0 to the end of the file, as the
    /// reference's validation demands: no overlap, no gap, no trailing bytes.
    /// </summary>
    private static void CheckContiguous(string path, IEnumerable<SafeTensorInfo> tensors, long dataLength)
    {
        long expected = 0;
        SafeTensorInfo? previous = null;
        foreach (var tensor in tensors.OrderBy(t => t.Begin).ThenBy(t => t.End))
        {
            if (tensor.Begin < expected && previous is not null)
            {
                throw new CheckpointException(path, tensor.Name,
                    $"data_offsets [{tensor.Begin}, {tensor.End}] overlap tensor '{previous.Name}' [{previous.Begin}, {previous.End}].");
            }
            if (tensor.Begin > expected)
            {
                throw new CheckpointException(path, tensor.Name,
                    $"data_offsets [{tensor.Begin}, {tensor.End}] leave a gap of {tensor.Begin - expected} bytes after byte {expected} of the data area; safetensors tensors are stored back to back.");
            }
            expected = tensor.End;
            previous = tensor;
        }
        if (expected != dataLength)
        {
            throw new CheckpointException(path, null,
                $"{dataLength - expected} bytes follow the last tensor (the data area is {dataLength} bytes, the tensors end at {expected}); safetensors files have no trailing bytes.");
        }
    }

    private static void ParseMetadata(string path, JsonElement value, Dictionary<string, string> metadata)
    {
        if (value.ValueKind == JsonValueKind.Null)
        {
            return;
        }
        if (value.ValueKind != JsonValueKind.Object)
        {
            throw new CheckpointException(path, MetadataKey, $"must be an object of strings, not a JSON {value.ValueKind}.");
        }
        foreach (var item in value.EnumerateObject())
        {
            if (item.Value.ValueKind != JsonValueKind.String)
            {
                throw new CheckpointException(path, MetadataKey, $"value of '{item.Name}' must be a string, not a JSON {item.Value.ValueKind}.");
            }
            metadata[item.Name] = item.Value.GetString()!;
        }
    }

    private static SafeTensorInfo ParseEntry(string path, string name, JsonElement value, long dataLength)
    {
        if (value.ValueKind != JsonValueKind.Object)
        {
            throw new CheckpointException(path, name, $"entry must be a JSON object, not a JSON {value.ValueKind}.");
        }
        if (!value.TryGetProperty("dtype", out var dtypeElement))
        {
            throw new CheckpointException(path, name, "entry has no 'dtype'.");
        }
        if (!value.TryGetProperty("shape", out var shapeElement))
        {
            throw new CheckpointException(path, name, "entry has no 'shape'.");
        }
        if (!value.TryGetProperty("data_offsets", out var offsetsElement))
        {
            throw new CheckpointException(path, name, "entry has no 'data_offsets'.");
        }
        if (dtypeElement.ValueKind != JsonValueKind.String)
        {
            throw new CheckpointException(path, name, $"'dtype' must be a string, not a JSON {dtypeElement.ValueKind}.");
        }
        var dtype = dtypeElement.GetString()!;
        if (!SafeTensorsDTypes.TryGet(dtype, out _, out var elementSize))
        {
            throw new CheckpointException(path, name, $"unknown dtype '{dtype}' (supported: {string.Join(", ", SafeTensorsDTypes.Names)}).");
        }

        var shape = ReadIntegers(path, name, "shape", shapeElement);
        var offsets = ReadIntegers(path, name, "data_offsets", offsetsElement);
        if (offsets.Length != 2)
        {
            throw new CheckpointException(path, name, $"'data_offsets' must hold two integers [begin, end], not {offsets.Length}.");
        }
        var (begin, end) = (offsets[0], offsets[1]);
        if (begin > end)
        {
            throw new CheckpointException(path, name, $"data_offsets begin {begin} is greater than end {end}.");
        }
        if (end > dataLength)
        {
            throw new CheckpointException(path, name, $"data_offsets [{begin}, {end}] lie outside the data area ({dataLength} bytes; the file may be truncated).");
        }

        long expected;
        try
        {
            expected = elementSize;
            foreach (var dimension in shape)
            {
                expected = checked(expected * dimension);
            }
        }
        catch (OverflowException)
        {
            throw new CheckpointException(path, name, $"shape [{string.Join(", ", shape)}] is too large.");
        }
        if (expected != end - begin)
        {
            throw new CheckpointException(path, name,
                $"shape [{string.Join(", ", shape)}] of {dtype} needs {expected} bytes but data_offsets [{begin}, {end}] span {end - begin}.");
        }
        return new SafeTensorInfo(name, dtype, shape, begin, end);
    }

    private static long[] ReadIntegers(string path, string name, string field, JsonElement element)
    {
        if (element.ValueKind != JsonValueKind.Array)
        {
            throw new CheckpointException(path, name, $"'{field}' must be an array of integers, not a JSON {element.ValueKind}.");
        }
        var values = new long[element.GetArrayLength()];
        var i = 0;
        foreach (var item in element.EnumerateArray())
        {
            if (item.ValueKind != JsonValueKind.Number || !item.TryGetInt64(out var number) || number < 0)
            {
                throw new CheckpointException(path, name, $"'{field}' must hold non-negative integers; found {item.GetRawText()}.");
            }
            values[i++] = number;
        }
        return values;
    }

    private static byte[] BuildHeader(IEnumerable<(string Name, string DType, long[] Shape, long Bytes)> entries, IReadOnlyDictionary<string, string>? metadata)
    {
        using var buffer = new MemoryStream();
        using (var writer = new Utf8JsonWriter(buffer, new JsonWriterOptions { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            writer.WriteStartObject();
            if (metadata is { Count: > 0 })
            {
                writer.WriteStartObject(MetadataKey);
                foreach (var (key, value) in metadata.OrderBy(p => p.Key, StringComparer.Ordinal))
                {
                    writer.WriteString(key, value);
                }
                writer.WriteEndObject();
            }
            long offset = 0;
            foreach (var (name, dtype, shape, bytes) in entries)
            {
                writer.WriteStartObject(name);
                writer.WriteString("dtype", dtype);
                writer.WriteStartArray("shape");
                foreach (var dimension in shape)
                {
                    writer.WriteNumberValue(dimension);
                }
                writer.WriteEndArray();
                writer.WriteStartArray("data_offsets");
                writer.WriteNumberValue(offset);
                writer.WriteNumberValue(offset + bytes);
                writer.WriteEndArray();
                writer.WriteEndObject();
                offset += bytes;
            }
            writer.WriteEndObject();
        }
        // Pad with spaces so the data area starts 8-byte aligned, as the reference writer does.
        var padding = (int)((8 - buffer.Length % 8) % 8);
        for (var i = 0; i < padding; i++)
        {
            buffer.WriteByte((byte)' ');
        }
        return buffer.ToArray();
    }

    // TorchSharp 0.107 exposes no public data pointer; Tensor.bytes is a span over the (CPU, contiguous) native
    // storage, at most int.MaxValue long, so large tensors are copied through 1-D views of at most ChunkBytes.
    private static void ReadTensorBytes(string path, string name, SafeFileHandle handle, torch.Tensor tensor, long fileOffset, long length)
    {
        if (length == 0)
        {
            return;
        }
        long done = 0;
        foreach (var part in Chunks(tensor))
        {
            using (part)
            {
                var span = part.bytes;
                var filled = 0;
                while (filled < span.Length)
                {
                    var read = RandomAccess.Read(handle, span[filled..], fileOffset + done + filled);
                    if (read == 0)
                    {
                        throw new CheckpointException(path, name, $"truncated: the file ended {length - done - filled} bytes before the end of the tensor.");
                    }
                    filled += read;
                }
                done += filled;
            }
        }
    }

    private static void WriteTensorBytes(Stream stream, torch.Tensor tensor)
    {
        if (tensor.NumberOfElements == 0)
        {
            return;
        }
        using var scope = torch.NewDisposeScope();
        var source = tensor.detach();
        if (source.device_type != DeviceType.CPU)
        {
            source = source.cpu();
        }
        if (!source.is_contiguous())
        {
            source = source.contiguous();
        }
        foreach (var part in Chunks(source))
        {
            stream.Write(part.bytes);
        }
    }

    // 1-D views of a contiguous CPU tensor, each at most ChunkBytes long.
    private static IEnumerable<torch.Tensor> Chunks(torch.Tensor tensor)
    {
        var count = tensor.NumberOfElements;
        var perChunk = Math.Max(1, ChunkBytes / tensor.ElementSize);
        using var flat = tensor.reshape(-1);
        for (long start = 0; start < count; start += perChunk)
        {
            yield return flat.narrow(0, start, Math.Min(perChunk, count - start));
        }
    }

    private static void ReadExactly(string path, SafeFileHandle handle, Span<byte> destination, long fileOffset)
    {
        var done = 0;
        while (done < destination.Length)
        {
            var read = RandomAccess.Read(handle, destination[done..], fileOffset + done);
            if (read == 0)
            {
                throw new CheckpointException(path, null, "truncated while reading the header.");
            }
            done += read;
        }
    }

    private static void TryDelete(string path)
    {
        try
        {
            File.Delete(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // Best effort: a stray temporary file is harmless.
        }
    }
}
