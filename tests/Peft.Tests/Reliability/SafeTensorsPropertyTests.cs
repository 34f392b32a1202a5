using System.Text;
using CsCheck;
using Peft.Checkpoints;
using Peft.Tests.Checkpoints;
using TorchSharp;

namespace Peft.Tests.Reliability;

/// <summary>
/// Properties of the safetensors reader and writer over generated inputs (CsCheck, which shrinks a
/// failure to a small case and prints its seed): what is written reads back bit for bit, and no
/// header or corruption ends in anything but a valid file or a <see cref="CheckpointException"/>.
/// </summary>
public class SafeTensorsPropertyTests
{
    private static readonly string[] DTypes = [.. SafeTensorsDTypes.Names];

    private static readonly Gen<(string DType, long[] Shape)> Entry =
        Gen.Select(Gen.OneOf(DTypes), Gen.Long[0, 5].Array[0, 3]);

    private static readonly Gen<Dictionary<string, (string DType, long[] Shape)>> Files =
        Gen.Dictionary(Gen.String[Gen.Char.AlphaNumeric, 1, 12], Entry)[0, 6];

    [Fact]
    public void WhatIsWrittenReadsBackBitForBit()
    {
        using var scratch = new ScratchDirectory();
        Files.Sample(entries =>
        {
            var path = scratch.File($"{Guid.NewGuid():N}.safetensors");
            var tensors = entries.ToDictionary(e => e.Key, e => Random(e.Value.DType, e.Value.Shape));
            SafeTensors.Save(path, tensors, new Dictionary<string, string> { ["format"] = "pt" });

            var loaded = SafeTensors.Load(path);
            Assert.Equal(tensors.Keys.Order(StringComparer.Ordinal), loaded.Keys.Order(StringComparer.Ordinal));
            foreach (var (name, tensor) in tensors)
            {
                Assert.Equal(tensor.dtype, loaded[name].dtype);
                Assert.Equal(tensor.shape, loaded[name].shape);
                Assert.Equal(Bytes(tensor), Bytes(loaded[name]));
            }
            Assert.Equal("pt", SafeTensors.ReadHeader(path).Metadata["format"]);
            File.Delete(path);
        }, iter: 60);
    }

    [Fact]
    public void AnyCorruptionOfAValidFileLoadsOrIsACheckpointException()
    {
        using var scratch = new ScratchDirectory();
        var original = scratch.File("valid.safetensors");
        SafeTensors.Save(original, new Dictionary<string, torch.Tensor>
        {
            ["a.weight"] = torch.randn(3, 4),
            ["b.bias"] = torch.arange(5, dtype: torch.int64),
            ["c"] = torch.ones(2, dtype: torch.bfloat16),
        });
        var bytes = File.ReadAllBytes(original);
        var corruption = Gen.Select(Gen.Select(Gen.Int[0, bytes.Length - 1], Gen.Byte).Array[1, 8], Gen.Int[0, bytes.Length + 16]);
        corruption.Sample((flips, length) =>
        {
            var corrupt = new byte[length];
            Array.Copy(bytes, corrupt, Math.Min(length, bytes.Length));
            foreach (var (at, value) in flips) if (at < length) corrupt[at] = value;
            var path = scratch.File("corrupt.safetensors");
            File.WriteAllBytes(path, corrupt);
            LoadsOrIsRefused(path);
        }, iter: 300);
    }

    [Fact]
    public void AnyHeaderLoadsOrIsACheckpointException()
    {
        using var scratch = new ScratchDirectory();
        var number = Gen.OneOf(Gen.Long[-3, 40], Gen.OneOf(long.MaxValue, long.MinValue, 1L << 40, 1L << 62));
        var entry = Gen.Select(Gen.OneOf([.. DTypes, "F8", "", "f32"]), number.Array[0, 4], number.Array[0, 3])
            .Select((dtype, shape, offsets) =>
                $"{{\"dtype\":\"{dtype}\",\"shape\":[{string.Join(",", shape)}],\"data_offsets\":[{string.Join(",", offsets)}]}}");
        var header = Gen.Select(Gen.String[Gen.Char.AlphaNumeric, 0, 4], entry).Array[0, 4]
            .Select(entries => "{" + string.Join(",", entries.Select(e => $"\"{e.Item1}\":{e.Item2}")) + "}");
        Gen.Select(header, Gen.Int[0, 64]).Sample((json, dataLength) =>
        {
            var path = scratch.WriteRaw("generated.safetensors", json, new byte[dataLength]);
            LoadsOrIsRefused(path);
        }, iter: 300);
    }

    private static void LoadsOrIsRefused(string path)
    {
        try
        {
            foreach (var tensor in SafeTensors.Load(path).Values) tensor.Dispose();
        }
        catch (CheckpointException e)
        {
            Assert.Contains(path, e.Message);
        }
    }

    private static torch.Tensor Random(string dtype, long[] shape)
    {
        SafeTensorsDTypes.TryGet(dtype, out var type, out _);
        return type switch
        {
            torch.ScalarType.Bool => torch.randint(0, 2, shape).to(type),
            torch.ScalarType.Float16 or torch.ScalarType.BFloat16 or torch.ScalarType.Float32 or torch.ScalarType.Float64 => torch.randn(shape).to(type),
            _ => torch.randint(0, 100, shape).to(type),
        };
    }

    private static byte[] Bytes(torch.Tensor tensor) => tensor.contiguous().bytes.ToArray();
}
