using System.Reflection.Metadata;
using System.Reflection.PortableExecutable;

namespace Peft.Pretrained.Onnx;

/// <summary>
/// Reads manifest resources straight from an assembly file's metadata, without loading the assembly
/// (so none of its code or dependencies are needed).
/// </summary>
internal static class AssemblyResources
{
    /// <summary>The names of the resources embedded in <paramref name="assemblyPath"/>.</summary>
    public static IReadOnlyList<string> Names(string assemblyPath)
    {
        using var stream = File.OpenRead(assemblyPath);
        using var pe = new PEReader(stream);
        var metadata = pe.GetMetadataReader();
        return [.. metadata.ManifestResources.Select(h => metadata.GetString(metadata.GetManifestResource(h).Name))];
    }

    /// <summary>The bytes of the embedded resource <paramref name="resourceName"/>.</summary>
    /// <exception cref="InvalidDataException">The assembly has no such embedded resource.</exception>
    public static byte[] Read(string assemblyPath, string resourceName)
    {
        using var stream = File.OpenRead(assemblyPath);
        using var pe = new PEReader(stream);
        var metadata = pe.GetMetadataReader();
        foreach (var handle in metadata.ManifestResources)
        {
            var resource = metadata.GetManifestResource(handle);
            if (!metadata.StringComparer.Equals(resource.Name, resourceName)) continue;
            if (!resource.Implementation.IsNil)
            {
                throw new InvalidDataException($"{assemblyPath}: resource '{resourceName}' lives in another file, not in the assembly.");
            }
            var directory = pe.PEHeaders.CorHeader?.ResourcesDirectory
                ?? throw new InvalidDataException($"{assemblyPath}: not a .NET assembly.");
            var block = pe.GetSectionData(directory.RelativeVirtualAddress);
            var offset = checked((int)resource.Offset);
            var reader = block.GetReader(offset, block.Length - offset);
            var length = reader.ReadInt32();
            if (length < 0 || length > reader.RemainingBytes)
            {
                throw new InvalidDataException($"{assemblyPath}: resource '{resourceName}' claims {length} bytes, past the end of the resources.");
            }
            return reader.ReadBytes(length);
        }
        throw new InvalidDataException(
            $"{assemblyPath}: no embedded resource '{resourceName}'. Present: {string.Join(", ", Names(assemblyPath))}.");
    }
}
