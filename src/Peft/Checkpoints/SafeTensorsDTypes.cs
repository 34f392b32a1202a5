using TorchSharp;

namespace Peft.Checkpoints;

/// <summary>The mapping between safetensors dtype names and TorchSharp scalar types.</summary>
public static class SafeTensorsDTypes
{
    private static readonly Dictionary<string, (torch.ScalarType Type, int Size, int Rank)> ByName = new(StringComparer.Ordinal)
    {
        // Rank follows the order of the safetensors Rust Dtype enum; the writer puts larger ranks first.
        ["BOOL"] = (torch.ScalarType.Bool, 1, 0),
        ["U8"] = (torch.ScalarType.Byte, 1, 1),
        ["I8"] = (torch.ScalarType.Int8, 1, 2),
        ["I16"] = (torch.ScalarType.Int16, 2, 3),
        ["F16"] = (torch.ScalarType.Float16, 2, 4),
        ["BF16"] = (torch.ScalarType.BFloat16, 2, 5),
        ["I32"] = (torch.ScalarType.Int32, 4, 6),
        ["F32"] = (torch.ScalarType.Float32, 4, 7),
        ["F64"] = (torch.ScalarType.Float64, 8, 8),
        ["I64"] = (torch.ScalarType.Int64, 8, 9),
    };

    /// <summary>The dtype names this library reads and writes.</summary>
    public static IReadOnlyCollection<string> Names => ByName.Keys;

    /// <summary>The TorchSharp scalar type and element size for a safetensors dtype name.</summary>
    /// <returns>False when the name is not a supported dtype.</returns>
    public static bool TryGet(string name, out torch.ScalarType type, out int elementSize)
    {
        if (ByName.TryGetValue(name, out var entry))
        {
            type = entry.Type;
            elementSize = entry.Size;
            return true;
        }
        type = default;
        elementSize = 0;
        return false;
    }

    /// <summary>The safetensors dtype name for a TorchSharp scalar type, or null when it has none.</summary>
    public static string? NameOf(torch.ScalarType type)
    {
        foreach (var (name, entry) in ByName)
        {
            if (entry.Type == type)
            {
                return name;
            }
        }
        return null;
    }

    internal static int Rank(string name) => ByName[name].Rank;
}
