using Peft.Pretrained.Onnx;

namespace Peft.Pretrained.Tests;

public sealed class OnnxReaderTests
{
    [Fact]
    public void Varints_packed_and_unpacked_fields_are_read()
    {
        // field 1 varint 300 (ac 02); field 1 varint -1 (ten bytes); field 2 packed [1, 150]; field 3 fixed32 1.5f.
        byte[] message =
        [
            0x08, 0xAC, 0x02,
            0x08, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01,
            0x12, 0x03, 0x01, 0x96, 0x01,
            0x1D, 0x00, 0x00, 0xC0, 0x3F,
        ];
        var reader = new ProtoReader(message);
        var longs = new List<long>();
        var floats = new List<float>();
        while (reader.Next())
        {
            if (reader.Field is 1 or 2) reader.Int64s(longs);
            else reader.Floats(floats);
        }

        Assert.Equal([300L, -1L, 1L, 150L], longs);
        Assert.Equal([1.5f], floats);
    }

    [Fact]
    public void A_truncated_message_is_rejected()
    {
        var reader = new ProtoReader(new byte[] { 0x12, 0x05, 0x01 });
        Assert.True(reader.Next());
        Assert.Throws<InvalidDataException>(() => reader.Bytes());
    }

    [Fact]
    public void A_matmul_weight_without_a_following_bias_fails_loudly()
    {
        OnnxTensor Tensor(string name, params long[] dims) =>
            new(name, dims, OnnxTensor.Float, new byte[4 * dims.Aggregate(1L, (a, b) => a * b)], [], []);
        var graph = new OnnxGraph(
            [
                new OnnxNode("MatMul_1", "MatMul", ["x", "101"], ["y"], new Dictionary<string, long>()),
                new OnnxNode("Add_2", "Add", ["y", "layer.bias"], ["z"], new Dictionary<string, long>()),
                new OnnxNode("MatMul_3", "MatMul", ["z", "102"], ["w"], new Dictionary<string, long>()),
                new OnnxNode("Relu_4", "Relu", ["w"], ["out"], new Dictionary<string, long>()),
            ],
            [Tensor("101", 2, 3), Tensor("layer.bias", 3), Tensor("102", 3, 4)]);

        var error = Assert.Throws<InvalidDataException>(() => OnnxBertWeights.Convert(graph));

        Assert.Contains("102", error.Message);
        Assert.Contains("MatMul_3", error.Message);
        Assert.DoesNotContain("101 ", error.Message);
    }

    [Fact]
    public void A_matmul_weight_is_named_after_its_bias_and_transposed()
    {
        var stored = new byte[4 * 6];
        for (var i = 0; i < 6; i++) BitConverter.TryWriteBytes(stored.AsSpan(4 * i), (float)i); // (in 2, out 3): [[0,1,2],[3,4,5]]
        var graph = new OnnxGraph(
            [
                new OnnxNode("MatMul_1", "MatMul", ["x", "101"], ["y"], new Dictionary<string, long>()),
                new OnnxNode("Add_2", "Add", ["layer.dense.bias", "y"], ["z"], new Dictionary<string, long>()),
            ],
            [new OnnxTensor("101", [2, 3], OnnxTensor.Float, stored, [], []), new OnnxTensor("layer.dense.bias", [3], OnnxTensor.Float, new byte[12], [], [])]);

        var weights = OnnxBertWeights.Convert(graph);
        try
        {
            Assert.Equal(["layer.dense.bias", "layer.dense.weight"], weights.Keys.Order());
            Assert.Equal([3L, 2L], weights["layer.dense.weight"].shape);
            Assert.Equal([0f, 3f, 1f, 4f, 2f, 5f], weights["layer.dense.weight"].data<float>().ToArray());
        }
        finally
        {
            foreach (var tensor in weights.Values) tensor.Dispose();
        }
    }
}
