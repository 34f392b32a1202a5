using Peft.Checkpoints;

namespace Peft.Tests.Checkpoints;

/// <summary>Every malformed file is rejected with a <see cref="CheckpointException"/> naming the file (and key).</summary>
public class SafeTensorsValidationTests
{
    private const string Ok = "\"ok\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}";

    private static CheckpointException Rejected(string path, string? key, string expectedFragment)
    {
        // ReadHeader and Load both validate, and agree.
        var fromHeader = Assert.Throws<CheckpointException>(() => SafeTensors.ReadHeader(path));
        var fromLoad = Assert.Throws<CheckpointException>(() => SafeTensors.Load(path));
        Assert.Equal(fromHeader.Message, fromLoad.Message);
        Assert.Contains(path, fromHeader.Message);
        Assert.Equal(path, fromHeader.FilePath);
        Assert.Equal(key, fromHeader.TensorName);
        if (key is not null)
        {
            Assert.Contains($"'{key}'", fromHeader.Message);
        }
        Assert.Contains(expectedFragment, fromHeader.Message);
        return fromHeader;
    }

    [Fact]
    public void MissingFile()
    {
        using var scratch = new ScratchDirectory();
        Rejected(scratch.File("absent.safetensors"), null, "not found");
    }

    [Fact]
    public void FileShorterThanTheLengthPrefix()
    {
        using var scratch = new ScratchDirectory();
        var path = scratch.File("short.safetensors");
        File.WriteAllBytes(path, [1, 2, 3, 4]);
        Rejected(path, null, "truncated");
    }

    [Fact]
    public void HeaderLengthBeyondTheFile()
    {
        using var scratch = new ScratchDirectory();
        var path = scratch.WriteRaw("long.safetensors", "{}", declaredLength: 1000);
        Rejected(path, null, "exceeds the file size");
    }

    [Fact]
    public void HeaderLengthBeyondTheBound()
    {
        using var scratch = new ScratchDirectory();
        var path = scratch.WriteRaw("huge.safetensors", "{}", declaredLength: 100_000_001);
        Rejected(path, null, "exceeds the 100000000-byte bound");
    }

    [Fact]
    public void HeaderLengthWithTheTopBitSet()
    {
        using var scratch = new ScratchDirectory();
        var path = scratch.WriteRaw("negative.safetensors", "{}", declaredLength: ulong.MaxValue);
        Rejected(path, null, "bound");
    }

    [Fact]
    public void HeaderNotJson()
    {
        using var scratch = new ScratchDirectory();
        var path = scratch.WriteRaw("garbage.safetensors", "{\"a\": nope");
        Rejected(path, null, "not valid JSON");
    }

    [Fact]
    public void HeaderNotAnObject()
    {
        using var scratch = new ScratchDirectory();
        var path = scratch.WriteRaw("array.safetensors", "[1, 2]");
        Rejected(path, null, "not an object");
    }

    [Theory]
    [InlineData("dtype", "{\"shape\":[2],\"data_offsets\":[0,8]}")]
    [InlineData("shape", "{\"dtype\":\"F32\",\"data_offsets\":[0,8]}")]
    [InlineData("data_offsets", "{\"dtype\":\"F32\",\"shape\":[2]}")]
    public void EntryMissingAField(string field, string entry)
    {
        using var scratch = new ScratchDirectory();
        var path = scratch.WriteRaw("missing.safetensors", "{" + Ok + ",\"w.bad\":" + entry + "}", new byte[16]);
        Rejected(path, "w.bad", $"no '{field}'");
    }

    [Fact]
    public void EntryNotAnObject()
    {
        using var scratch = new ScratchDirectory();
        var path = scratch.WriteRaw("entry.safetensors", "{\"w\":[1]}");
        Rejected(path, "w", "must be a JSON object");
    }

    [Theory]
    [InlineData("F8_E4M3")]
    [InlineData("f32")]
    [InlineData("Q4")]
    public void UnknownDType(string dtype)
    {
        using var scratch = new ScratchDirectory();
        var path = scratch.WriteRaw("dtype.safetensors", "{\"w\":{\"dtype\":\"" + dtype + "\",\"shape\":[2],\"data_offsets\":[0,8]}}", new byte[8]);
        Rejected(path, "w", $"unknown dtype '{dtype}'");
    }

    [Fact]
    public void NegativeOrFractionalShape()
    {
        using var scratch = new ScratchDirectory();
        var negative = scratch.WriteRaw("neg.safetensors", "{\"w\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", new byte[8]);
        var fractional = scratch.WriteRaw("frac.safetensors", "{\"w\":{\"dtype\":\"F32\",\"shape\":[1.5],\"data_offsets\":[0,8]}}", new byte[8]);
        Rejected(negative, "w", "non-negative integers");
        Rejected(fractional, "w", "non-negative integers");
    }

    [Fact]
    public void OffsetsOutsideTheDataArea()
    {
        using var scratch = new ScratchDirectory();
        // The header promises 16 bytes of data; only 8 are there (a truncated file).
        var path = scratch.WriteRaw("outside.safetensors", "{\"w\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", new byte[8]);
        Rejected(path, "w", "outside the data area");
    }

    [Fact]
    public void OverlappingTensors()
    {
        using var scratch = new ScratchDirectory();
        var path = scratch.WriteRaw("overlap.safetensors",
            "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}",
            new byte[12]);
        var error = Rejected(path, "b", "overlap");
        Assert.Contains("'a'", error.Message);
    }

    [Fact]
    public void BeginAfterEnd()
    {
        using var scratch = new ScratchDirectory();
        var path = scratch.WriteRaw("reversed.safetensors", "{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,0]}}", new byte[8]);
        Rejected(path, "w", "greater than end");
    }

    [Fact]
    public void WrongNumberOfOffsets()
    {
        using var scratch = new ScratchDirectory();
        var path = scratch.WriteRaw("offsets.safetensors", "{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,4,8]}}", new byte[8]);
        Rejected(path, "w", "two integers");
    }

    [Theory]
    [InlineData("F32", "[3]", 8)]
    [InlineData("F16", "[2,2]", 16)]
    [InlineData("I64", "[]", 4)]
    public void ShapeAndByteLengthDisagree(string dtype, string shape, int bytes)
    {
        using var scratch = new ScratchDirectory();
        var path = scratch.WriteRaw("size.safetensors", "{\"w\":{\"dtype\":\"" + dtype + "\",\"shape\":" + shape + ",\"data_offsets\":[0," + bytes + "]}}", new byte[bytes]);
        Rejected(path, "w", $"span {bytes}");
    }

    [Fact]
    public void ShapeProductOverflows()
    {
        using var scratch = new ScratchDirectory();
        var path = scratch.WriteRaw("overflow.safetensors", "{\"w\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,8]}}", new byte[8]);
        Rejected(path, "w", "too large");
    }

    [Fact]
    public void MetadataMustHoldStrings()
    {
        using var scratch = new ScratchDirectory();
        var path = scratch.WriteRaw("meta.safetensors", "{\"__metadata__\":{\"format\":1}," + Ok + "}", new byte[8]);
        Rejected(path, "__metadata__", "'format' must be a string");
    }

    [Fact]
    public void DuplicateKey()
    {
        using var scratch = new ScratchDirectory();
        var path = scratch.WriteRaw("dup.safetensors", "{" + Ok + "," + Ok + "}", new byte[8]);
        Rejected(path, "ok", "more than once");
    }

    [Fact]
    public void AValidHandWrittenFileLoads()
    {
        // The helper itself produces loadable files, so the rejections above are due to the defects they plant.
        using var scratch = new ScratchDirectory();
        var data = new byte[8];
        BitConverter.TryWriteBytes(data.AsSpan(0, 4), 1.5f);
        BitConverter.TryWriteBytes(data.AsSpan(4, 4), -2f);
        var path = scratch.WriteRaw("fine.safetensors", "{\"__metadata__\":{\"format\":\"pt\"}," + Ok + "}", data);

        var header = SafeTensors.ReadHeader(path);
        var tensors = SafeTensors.Load(path);

        Assert.Equal("pt", header.Metadata["format"]);
        Assert.Equal(new float[] { 1.5f, -2f }, tensors["ok"].data<float>().ToArray());
    }

    [Fact]
    public void SaveRejectsUnsupportedDTypeAndReservedOrDuplicateNames()
    {
        using var scratch = new ScratchDirectory();
        var path = scratch.File("out.safetensors");
        var complex = TorchSharp.torch.zeros([2], dtype: TorchSharp.torch.ScalarType.ComplexFloat32);
        var real = TorchSharp.torch.zeros([2]);

        var dtype = Assert.Throws<CheckpointException>(() => SafeTensors.Save(path, [KeyValuePair.Create("c", complex)]));
        var reserved = Assert.Throws<CheckpointException>(() => SafeTensors.Save(path, [KeyValuePair.Create("__metadata__", real)]));
        var duplicate = Assert.Throws<CheckpointException>(() => SafeTensors.Save(path, [KeyValuePair.Create("r", real), KeyValuePair.Create("r", real)]));

        Assert.Contains(path, dtype.Message);
        Assert.Equal("c", dtype.TensorName);
        Assert.Contains("ComplexFloat32", dtype.Message);
        Assert.Equal("__metadata__", reserved.TensorName);
        Assert.Equal("r", duplicate.TensorName);
        Assert.False(File.Exists(path));
        Assert.Empty(Directory.GetFiles(scratch.Path));
    }
}

/// <summary>What the reference's own validation refuses beyond overlaps: gaps, trailing bytes, files that are not regular.</summary>
public class SafeTensorsStrictLayoutTests
{
    [Fact]
    public void AGapBetweenTensorsIsRefused()
    {
        using var scratch = new ScratchDirectory();
        var path = scratch.WriteRaw("gap.safetensors",
            "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[12,16]}}", new byte[16]);
        var error = Assert.Throws<CheckpointException>(() => SafeTensors.ReadHeader(path));
        Assert.Equal("b", error.TensorName);
        Assert.Contains("gap of 4 bytes", error.Message);
    }

    [Fact]
    public void ADataAreaThatDoesNotStartAtZeroIsRefused()
    {
        using var scratch = new ScratchDirectory();
        var path = scratch.WriteRaw("offset.safetensors", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", new byte[8]);
        Assert.Contains("gap of 4 bytes after byte 0", Assert.Throws<CheckpointException>(() => SafeTensors.Load(path)).Message);
    }

    [Fact]
    public void TrailingBytesAreRefused()
    {
        using var scratch = new ScratchDirectory();
        var path = scratch.WriteRaw("trailing.safetensors", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", new byte[9]);
        var error = Assert.Throws<CheckpointException>(() => SafeTensors.ReadHeader(path));
        Assert.Null(error.TensorName);
        Assert.Contains("1 bytes follow the last tensor", error.Message);
    }

    [Fact]
    public void EmptyTensorsMayShareAnOffset()
    {
        using var scratch = new ScratchDirectory();
        var path = scratch.WriteRaw("empty.safetensors",
            "{\"a\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[0,0]},\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},\"c\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[4,4]}}", new byte[4]);
        Assert.Equal(3, SafeTensors.ReadHeader(path).Tensors.Count);
    }

    [Fact]
    public async Task AFifoIsRefusedWithoutBlocking()
    {
        if (!OperatingSystem.IsLinux()) return;
        using var scratch = new ScratchDirectory();
        var path = scratch.File("model.safetensors");
        using (var mkfifo = System.Diagnostics.Process.Start("mkfifo", path)) mkfifo.WaitForExit();
        Assert.True(File.Exists(path));

        var read = Task.Run(() => Assert.Throws<CheckpointException>(() => SafeTensors.ReadHeader(path)));
        var error = await read.WaitAsync(TimeSpan.FromSeconds(20));   // a TimeoutException means it blocked
        Assert.Contains("not a regular file", error.Message);
        Assert.Contains(path, error.Message);
    }

    [Fact]
    public void ACharacterDeviceIsRefused()
    {
        if (!File.Exists("/dev/zero")) return;
        Assert.Contains("not a regular file", Assert.Throws<CheckpointException>(() => SafeTensors.ReadHeader("/dev/zero")).Message);
    }
}
