using TorchSharp;

namespace Peft.Checkpoints;

/// <summary>
/// A model directory's safetensors weights opened for reading one tensor at a time through memory maps: every
/// header (and the shard index) is validated when it is opened, and no tensor byte is read until
/// <see cref="Read"/> asks for that tensor.
/// </summary>
/// <remarks>
/// A tensor asked for in its stored dtype on the CPU is returned as a view of the mapped file (zero-copy: writes to it
/// stay private to the process, as <c>torch.from_file(shared=False)</c> maps with <c>MAP_PRIVATE</c>); its pages are
/// brought in as it is read, or on first use (see <see cref="PopulatePages"/>). Any other dtype or device is converted from
/// a mapping of that tensor alone, released before the next tensor, so the bytes of the files never all sit in
/// memory beside the converted weights. A tensor whose offset in the file is not a multiple of its element size
/// (possible in files from other writers; the Python writer aligns them) is read with positioned reads instead.
/// </remarks>
public sealed class MappedCheckpoint : IDisposable
{
    private readonly Dictionary<string, (string Path, SafeTensorsHeader Header, long FileLength)> _byName = new(StringComparer.Ordinal);
    private readonly Dictionary<(string Path, torch.ScalarType Type), torch.Tensor> _shared = [];
    private readonly List<string> _names = [];

    private MappedCheckpoint(string source) => Source = source;

    /// <summary>The model directory the weights come from.</summary>
    public string Source { get; }

    /// <summary>
    /// Whether a tensor returned as a view of the mapped file has all its pages brought into memory as it is read
    /// (<c>madvise(MADV_POPULATE_READ)</c> on Linux ≥ 5.14, else one read per page), so that it is resident and its
    /// first use pays no page faults; true by default. False: views stay lazily mapped, their pages read on first use
    /// (a tensor never used never enters memory). Converted tensors read their mapping once either way.
    /// </summary>
    public bool PopulatePages { get; set; } = true;

    /// <summary>Every tensor name, shard by shard, in header order.</summary>
    public IReadOnlyList<string> Names => _names;

    /// <summary>
    /// Opens the weights of <paramref name="modelDirectory"/> (<c>model.safetensors</c>, or the shards that
    /// <c>model.safetensors.index.json</c> lists), validating every header first.
    /// </summary>
    /// <exception cref="CheckpointException">No weights are found, the index is malformed or names a missing shard or key, or a header is invalid.</exception>
    public static MappedCheckpoint Open(string modelDirectory)
    {
        var checkpoint = new MappedCheckpoint(modelDirectory);
        foreach (var (path, header, names) in ModelWeights.ReadShards(modelDirectory))
        {
            var length = new FileInfo(path).Length;
            foreach (var name in names)
            {
                if (!checkpoint._byName.TryAdd(name, (path, header, length)))
                {
                    throw new CheckpointException(path, name, "the tensor is stored in more than one shard.");
                }
                checkpoint._names.Add(name);
            }
        }
        if (!BitConverter.IsLittleEndian)
        {
            throw new CheckpointException(modelDirectory, null, "loading safetensors requires a little-endian machine.");
        }
        return checkpoint;
    }

    /// <summary>Whether the checkpoint has a tensor called <paramref name="name"/>.</summary>
    public bool Contains(string name) => _byName.ContainsKey(name);

    /// <summary>The header entry of <paramref name="name"/> (dtype, shape, offsets).</summary>
    /// <exception cref="KeyNotFoundException">The checkpoint has no such tensor.</exception>
    public SafeTensorInfo Info(string name) => _byName[name].Header.Tensors[name];

    /// <summary>The file that stores <paramref name="name"/>.</summary>
    public string PathOf(string name) => _byName[name].Path;

    /// <summary>
    /// Reads <paramref name="name"/> in <paramref name="dtype"/> on <paramref name="device"/>. The caller owns the
    /// result; in its stored dtype on the CPU it is a view of the mapped file (see the remarks on the class).
    /// </summary>
    /// <param name="name">The tensor's name.</param>
    /// <param name="dtype">The dtype to return it in.</param>
    /// <param name="device">The device to return it on.</param>
    /// <param name="shareMapping">
    /// False: map this tensor alone even in its stored dtype, so its pages leave the process once the result is disposed
    /// (quantize-on-load reads a weight, quantizes it and drops it).
    /// </param>
    /// <exception cref="CheckpointException">The file cannot be mapped or read.</exception>
    public torch.Tensor Read(string name, torch.ScalarType dtype, torch.Device device, bool shareMapping = true)
    {
        var (path, header, fileLength) = _byName[name];
        var info = header.Tensors[name];
        SafeTensorsDTypes.TryGet(info.DType, out var stored, out var elementSize);
        var shape = info.Shape.ToArray();
        var offset = header.DataOffset + info.Begin;
        var zeroCopy = stored == dtype && device.type == DeviceType.CPU;
        if (info.End == info.Begin)
        {
            return torch.empty(shape, dtype: dtype, device: device);
        }
        try
        {
            if (offset % elementSize != 0)
            {
                var staged = torch.empty(shape, dtype: stored, device: torch.CPU);
                try
                {
                    using (var handle = SafeTensors.Open(path))
                    {
                        SafeTensors.ReadTensorBytes(path, name, handle, staged, offset, info.End - info.Begin);
                    }
                    if (zeroCopy) return staged;
                    using (staged) return staged.to(dtype, device);
                }
                catch
                {
                    staged.Dispose();
                    throw;
                }
            }
            var strides = ContiguousStrides(shape);
            if (zeroCopy && shareMapping)
            {
                // One mapping per file and dtype serves every zero-copy tensor: each view keeps it alive.
                if (!_shared.TryGetValue((path, stored), out var mapping))
                {
                    mapping = Map(path, stored, fileLength, elementSize);
                    _shared.Add((path, stored), mapping);
                }
                var mapped = mapping.as_strided(shape, strides, offset / elementSize);
                PopulateIfAsked(mapped);
                return mapped;
            }
            // A mapping of its own, dropped once converted, so that only this tensor's pages are resident.
            using var own = Map(path, stored, fileLength, elementSize);
            using var view = own.as_strided(shape, strides, offset / elementSize);
            return view.to(dtype, device);
        }
        catch (Exception e) when (e is System.Runtime.InteropServices.ExternalException or IOException or UnauthorizedAccessException)
        {
            throw new CheckpointException(path, name, $"cannot be read: {e.Message.Split('\n')[0]}", e);
        }
    }

    /// <summary>Drops this reader's mappings; tensors already returned keep theirs.</summary>
    public void Dispose()
    {
        foreach (var mapping in _shared.Values) mapping.Dispose();
        _shared.Clear();
    }

    private void PopulateIfAsked(torch.Tensor view)
    {
        if (!PopulatePages) return;
        using var phase = Modeling.LoadTrace.Phase("populate");
        _ = MappedPages.Populate(view);
    }

    private static torch.Tensor Map(string path, torch.ScalarType type, long fileLength, int elementSize) =>
        torch.from_file(path, shared: false, size: fileLength / elementSize, dtype: type);

    private static long[] ContiguousStrides(long[] shape)
    {
        var strides = new long[shape.Length];
        long stride = 1;
        for (var i = shape.Length - 1; i >= 0; i--)
        {
            strides[i] = stride;
            stride *= shape[i];
        }
        return strides;
    }
}
