using System.Buffers.Binary;
using System.Text;
using Peft.Checkpoints;
using TorchSharp;

namespace Peft.Tests.Checkpoints;

public class SafeTensorsRoundTripTests
{
    private static Dictionary<string, torch.Tensor> EveryDType() => new()
    {
        ["f32"] = torch.tensor(new float[] { 1.5f, -2f, 3.25f, float.MaxValue, -0f, 1e-30f }, [2, 3]),
        ["f64"] = torch.tensor(new double[] { Math.PI, -1e300, 0.1 }, [3]),
        ["f16"] = torch.tensor(new float[] { 1.5f, -2f, 0.25f, 65504f }, [2, 2]).to(torch.ScalarType.Float16),
        ["bf16"] = torch.tensor(new float[] { 1.5f, -2f, 0.25f, 3e38f }, [4, 1]).to(torch.ScalarType.BFloat16),
        ["i64"] = torch.tensor(new long[] { long.MinValue, -1, 0, long.MaxValue }, [4]),
        ["i32"] = torch.tensor(new int[] { int.MinValue, 7, int.MaxValue }, [3]),
        ["i16"] = torch.tensor(new short[] { short.MinValue, -3, short.MaxValue }, [1, 3]),
        ["i8"] = torch.tensor(new sbyte[] { sbyte.MinValue, -1, sbyte.MaxValue }, [3]),
        ["u8"] = torch.tensor(new byte[] { 0, 128, 255 }, [3]),
        ["bool"] = torch.tensor(new bool[] { true, false, true, true }, [2, 2]),
        ["scalar"] = torch.tensor(42.5f),
        ["empty"] = torch.zeros([0, 3], dtype: torch.ScalarType.Int32),
    };

    [Fact]
    public void EveryDTypeRoundTripsWithValuesAndMetadata()
    {
        using var scratch = new ScratchDirectory();
        var path = scratch.File("all.safetensors");
        var original = EveryDType();
        var metadata = new Dictionary<string, string> { ["format"] = "pt", ["note"] = "héllo \"quoted\"" };

        SafeTensors.Save(path, original, metadata);
        var loaded = SafeTensors.Load(path);
        var header = SafeTensors.ReadHeader(path);

        Assert.Equal(original.Keys.Order(), loaded.Keys.Order());
        foreach (var (name, expected) in original)
        {
            var actual = loaded[name];
            Assert.Equal(expected.dtype, actual.dtype);
            Assert.Equal(expected.shape, actual.shape);
            Assert.True(expected.equal(actual).all().item<bool>(), $"{name} differs after the round trip");
            Assert.Equal(expected.bytes.ToArray(), actual.bytes.ToArray());
        }
        Assert.Equal(metadata, header.Metadata);
        Assert.Equal(0, header.DataOffset % 8);
        Assert.Equal("BF16", header.Tensors["bf16"].DType);
        Assert.Equal("BOOL", header.Tensors["bool"].DType);
        Assert.Equal(new long[] { 0, 3 }, header.Tensors["empty"].Shape);
        Assert.Empty(header.Tensors["scalar"].Shape);
    }

    [Fact]
    public void ValuesSurviveNonContiguousInput()
    {
        using var scratch = new ScratchDirectory();
        var path = scratch.File("t.safetensors");
        var transposed = torch.arange(6, dtype: torch.ScalarType.Float32).reshape(2, 3).t();
        Assert.False(transposed.is_contiguous());

        SafeTensors.Save(path, [KeyValuePair.Create("t", transposed)]);

        Assert.Equal(new float[] { 0, 3, 1, 4, 2, 5 }, SafeTensors.Load(path)["t"].data<float>().ToArray());
    }

    [Fact]
    public void WritesTheSameBytesAsThePythonWriter()
    {
        using var scratch = new ScratchDirectory();
        var path = scratch.File("x.safetensors");
        SafeTensors.Save(path,
            [KeyValuePair.Create("b", torch.tensor(new float[] { 1f, 2f })), KeyValuePair.Create("a", torch.tensor(new long[] { 3 }))],
            new Dictionary<string, string> { ["format"] = "pt" });

        // Python's writer orders by dtype (I64 before F32) then name, writes compact JSON and pads with spaces to 8 bytes.
        var json = "{\"__metadata__\":{\"format\":\"pt\"},\"a\":{\"dtype\":\"I64\",\"shape\":[1],\"data_offsets\":[0,8]},"
            + "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}";
        json = json.PadRight((json.Length + 7) / 8 * 8);
        var expected = new byte[8 + json.Length + 16];
        BinaryPrimitives.WriteUInt64LittleEndian(expected, (ulong)json.Length);
        Encoding.ASCII.GetBytes(json).CopyTo(expected, 8);
        BinaryPrimitives.WriteInt64LittleEndian(expected.AsSpan(8 + json.Length), 3);
        BinaryPrimitives.WriteSingleLittleEndian(expected.AsSpan(16 + json.Length), 1f);
        BinaryPrimitives.WriteSingleLittleEndian(expected.AsSpan(20 + json.Length), 2f);

        Assert.Equal(expected, File.ReadAllBytes(path));
    }

    [Fact]
    public void LoadsTheReferenceGpt2Weights()
    {
        var path = Fixtures.Path("models", "gpt2-clm", "model.safetensors");

        var header = SafeTensors.ReadHeader(path);
        var weights = SafeTensors.Load(path);

        Assert.Equal("pt", header.Metadata["format"]);
        Assert.Equal(28, weights.Count);
        var wte = weights["transformer.wte.weight"];
        Assert.Equal(torch.ScalarType.Float32, wte.dtype);
        Assert.Equal(new long[] { 128, 32 }, wte.shape);
        Assert.Equal(-0.007784167770296335f, wte[0, 0].item<float>());
        Assert.Equal(0.010092045180499554f, wte[0, 1].item<float>());
        Assert.Equal(-0.010182829573750496f, wte[127, 31].item<float>());
        Assert.Equal(new long[] { 32, 96 }, weights["transformer.h.0.attn.c_attn.weight"].shape);
        Assert.Equal(new long[] { 96 }, weights["transformer.h.0.attn.c_attn.bias"].shape);
    }

    [Fact]
    public void LoadsTheReferenceIoFileWithInt64AndFloat32()
    {
        var path = Fixtures.Path("cases", "gpt2-clm-lora", "io.safetensors");

        var io = SafeTensors.Load(path);

        var ids = io["input.input_ids"];
        Assert.Equal(torch.ScalarType.Int64, ids.dtype);
        Assert.Equal(new long[] { 2, 8 }, ids.shape);
        Assert.Equal(new long[] { 98, 17, 127, 121 }, ids[0, ..4].data<long>().ToArray());
        Assert.Equal(0L, ids[1, 7].item<long>());
        var loss = io["output.loss"];
        Assert.Equal(torch.ScalarType.Float32, loss.dtype);
        Assert.Equal(4.812967777252197f, loss.item<float>());
        Assert.Empty(SafeTensors.ReadHeader(path).Metadata);
    }
}
