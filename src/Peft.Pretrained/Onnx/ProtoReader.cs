// A minimal protocol-buffers wire-format reader (https://protobuf.dev/programming-guides/encoding/):
// enough to walk an ONNX ModelProto without generated code.
using System.Buffers.Binary;
using System.Text;

namespace Peft.Pretrained.Onnx;

/// <summary>The four wire types a field can have (groups, types 3 and 4, are not used by ONNX).</summary>
internal enum WireType
{
    Varint = 0,
    Fixed64 = 1,
    LengthDelimited = 2,
    Fixed32 = 5,
}

/// <summary>Reads the fields of one protobuf message, front to back.</summary>
/// <remarks>
/// Works on a <see cref="ReadOnlyMemory{T}"/> so that nested messages and byte fields (an ONNX tensor's
/// <c>raw_data</c>) are slices of the original buffer, never copies.
/// </remarks>
internal struct ProtoReader(ReadOnlyMemory<byte> message)
{
    private readonly ReadOnlyMemory<byte> _message = message;
    private int _position;

    /// <summary>The current field's number (valid after <see cref="Next"/> returned true).</summary>
    public int Field { get; private set; }

    /// <summary>The current field's wire type (valid after <see cref="Next"/> returned true).</summary>
    public WireType Wire { get; private set; }

    /// <summary>Reads the next field's tag; false at the end of the message.</summary>
    public bool Next()
    {
        if (_position >= _message.Length) return false;
        var tag = ReadVarint();
        Field = checked((int)(tag >> 3));
        Wire = (WireType)(tag & 7);
        if (Field == 0 || Wire is not (WireType.Varint or WireType.Fixed64 or WireType.LengthDelimited or WireType.Fixed32))
        {
            throw new InvalidDataException($"Invalid protobuf tag {tag} at byte {_position}.");
        }
        return true;
    }

    /// <summary>The current field as an unsigned varint.</summary>
    public ulong Varint()
    {
        Expect(WireType.Varint);
        return ReadVarint();
    }

    /// <summary>The current field as a 64-bit integer (int64/int32 varint; negatives are ten-byte varints).</summary>
    public long Int64() => unchecked((long)Varint());

    /// <summary>The current length-delimited field (a nested message, bytes or a packed array).</summary>
    public ReadOnlyMemory<byte> Bytes()
    {
        Expect(WireType.LengthDelimited);
        var length = checked((int)ReadVarint());
        if (length < 0 || length > _message.Length - _position)
        {
            throw new InvalidDataException($"A length-delimited field of {length} bytes runs past the end of its message.");
        }
        var slice = _message.Slice(_position, length);
        _position += length;
        return slice;
    }

    /// <summary>The current field as a UTF-8 string.</summary>
    public string String() => Encoding.UTF8.GetString(Bytes().Span);

    /// <summary>The current field as a 32-bit float (fixed32).</summary>
    public float Float()
    {
        Expect(WireType.Fixed32);
        if (_message.Length - _position < 4) throw new InvalidDataException("A fixed32 field runs past the end of its message.");
        var value = BinaryPrimitives.ReadSingleLittleEndian(_message.Span.Slice(_position, 4));
        _position += 4;
        return value;
    }

    /// <summary>Appends the current repeated int64 field, packed or not, to <paramref name="values"/>.</summary>
    public void Int64s(List<long> values)
    {
        if (Wire == WireType.Varint)
        {
            values.Add(Int64());
            return;
        }
        var packed = new ProtoReader(Bytes());
        while (packed._position < packed._message.Length)
        {
            values.Add(unchecked((long)packed.ReadVarint()));
        }
    }

    /// <summary>Appends the current repeated float field, packed or not, to <paramref name="values"/>.</summary>
    public void Floats(List<float> values)
    {
        if (Wire == WireType.Fixed32)
        {
            values.Add(Float());
            return;
        }
        var span = Bytes().Span;
        if (span.Length % 4 != 0) throw new InvalidDataException("A packed float field's length is not a multiple of 4.");
        for (var i = 0; i < span.Length; i += 4)
        {
            values.Add(BinaryPrimitives.ReadSingleLittleEndian(span.Slice(i, 4)));
        }
    }

    /// <summary>Skips the current field, whatever its type.</summary>
    public void Skip()
    {
        switch (Wire)
        {
            case WireType.Varint: ReadVarint(); break;
            case WireType.Fixed64: Advance(8); break;
            case WireType.Fixed32: Advance(4); break;
            case WireType.LengthDelimited: Bytes(); break;
        }
    }

    private void Advance(int count)
    {
        if (_message.Length - _position < count) throw new InvalidDataException("A fixed-size field runs past the end of its message.");
        _position += count;
    }

    private readonly void Expect(WireType wire)
    {
        if (Wire != wire) throw new InvalidDataException($"Field {Field} has wire type {Wire}, expected {wire}.");
    }

    private ulong ReadVarint()
    {
        var span = _message.Span;
        ulong value = 0;
        for (var shift = 0; shift < 64; shift += 7)
        {
            if (_position >= span.Length) throw new InvalidDataException("A varint runs past the end of its message.");
            var b = span[_position++];
            value |= (ulong)(b & 0x7F) << shift;
            if ((b & 0x80) == 0) return value;
        }
        throw new InvalidDataException("A varint is longer than ten bytes.");
    }
}
