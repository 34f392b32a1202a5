// The idx format of MNIST and Fashion-MNIST (http://yann.lecun.com/exdb/mnist/, "FILE FORMATS"): two zero bytes,
// a type byte (0x08: unsigned byte), the number of dimensions, each dimension as a big-endian int32, then the
// values row-major. Files are often gzip-compressed (Debian ships them as *.gz); both forms are read.
using System.Buffers.Binary;
using System.IO.Compression;

namespace Peft.Pretrained;

/// <summary>An idx array of unsigned bytes: its dimensions and its values, row-major.</summary>
/// <param name="Dimensions">The sizes, outermost first (images: count, rows, columns; labels: count).</param>
/// <param name="Values">Every value, row-major.</param>
public sealed record IdxFile(IReadOnlyList<int> Dimensions, byte[] Values)
{
    private const byte UnsignedByte = 0x08;

    /// <summary>Reads <paramref name="path"/>, gunzipping it when it starts with gzip's magic bytes.</summary>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="InvalidDataException">The header is not an unsigned-byte idx header, or the data is shorter than it says.</exception>
    public static IdxFile Read(string path)
    {
        var bytes = File.ReadAllBytes(path);
        if (bytes.Length >= 2 && bytes[0] == 0x1f && bytes[1] == 0x8b)
        {
            using var gzip = new GZipStream(new MemoryStream(bytes), CompressionMode.Decompress);
            using var plain = new MemoryStream();
            gzip.CopyTo(plain);
            bytes = plain.ToArray();
        }
        return Parse(bytes, path);
    }

    /// <summary>Parses an uncompressed idx file's bytes.</summary>
    /// <param name="bytes">The file's contents.</param>
    /// <param name="source">The file, for messages.</param>
    /// <exception cref="InvalidDataException">The header is not an unsigned-byte idx header, or the data is shorter than it says.</exception>
    public static IdxFile Parse(ReadOnlySpan<byte> bytes, string source)
    {
        if (bytes.Length < 4 || bytes[0] != 0 || bytes[1] != 0)
        {
            throw new InvalidDataException($"{source}: not an idx file (it must start with two zero bytes).");
        }
        if (bytes[2] != UnsignedByte)
        {
            throw new InvalidDataException($"{source}: idx type 0x{bytes[2]:x2} is not supported; only unsigned bytes (0x08) are.");
        }
        var rank = bytes[3];
        if (rank == 0 || bytes.Length < 4 + 4 * rank) throw new InvalidDataException($"{source}: the header declares {rank} dimension(s) but is cut short.");
        var dimensions = new int[rank];
        long count = 1;
        for (var i = 0; i < rank; i++)
        {
            dimensions[i] = BinaryPrimitives.ReadInt32BigEndian(bytes.Slice(4 + 4 * i, 4));
            if (dimensions[i] < 0) throw new InvalidDataException($"{source}: dimension {i} is negative ({dimensions[i]}).");
            count *= dimensions[i];
        }
        var data = bytes[(4 + 4 * rank)..];
        if (data.Length < count)
        {
            throw new InvalidDataException($"{source}: dimensions [{string.Join(", ", dimensions)}] need {count} bytes of data, the file has {data.Length}.");
        }
        return new IdxFile(dimensions, data[..(int)count].ToArray());
    }
}
