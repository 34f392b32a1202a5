using Peft.Checkpoints;
using Peft.Quantization;
using static TorchSharp.torch;

namespace Peft;

/// <summary>
/// Fills the quantized layers of a model being loaded, one weight at a time: a floating-point weight is read (a view of
/// the mapped file when its dtype matches) and quantized; a weight bitsandbytes saved quantized is taken as stored
/// (4-bit: <c>weight</c> + <c>weight.absmax</c>, <c>weight.quant_map</c>, <c>weight.nested_*</c>,
/// <c>weight.quant_state.bitsandbytes__nf4|fp4</c>; 8-bit: an int8 <c>weight</c> + <c>SCB</c>).
/// </summary>
internal static class QuantizedLoading
{
    /// <summary>The quantized layers of <paramref name="model"/> with their paths.</summary>
    public static List<(string Path, QuantizedLinear Layer)> Layers(nn.Module model) =>
        model.named_modules().Where(m => m.module is QuantizedLinear).Select(m => (m.name, (QuantizedLinear)m.module)).ToList();

    /// <summary>Finds each layer's weight key (through <paramref name="keyOf"/>) and checks the shapes, before anything is read.</summary>
    /// <exception cref="CheckpointException">A weight is missing or does not fit.</exception>
    public static List<(QuantizedLinear Layer, string Key)> Plan(List<(string Path, QuantizedLinear Layer)> layers, MappedCheckpoint checkpoint, Func<string, string?> keyOf)
    {
        var plan = new List<(QuantizedLinear, string)>();
        foreach (var (path, layer) in layers)
        {
            var key = keyOf(path + ".weight") ?? throw new CheckpointException(checkpoint.Source, path + ".weight", "the model needs this weight but the checkpoint has none.");
            var stored = checkpoint.Info(key).Shape;
            var fourBit = checkpoint.Contains(key + ".absmax");
            var expected = fourBit ? [(layer.InFeatures * layer.OutFeatures + 1) / 2, 1] : new[] { layer.OutFeatures, layer.InFeatures };
            var fits = stored.SequenceEqual(expected) || fourBit && stored.Aggregate(1L, (a, b) => a * b) == expected[0];
            if (!fits)
            {
                throw new CheckpointException(checkpoint.PathOf(key), key,
                    $"shape [{string.Join(", ", stored)}] does not fit the model's {(fourBit ? "packed 4-bit " : "")}[{string.Join(", ", expected)}].");
            }
            if (fourBit && layer is not Linear4bit)
            {
                throw new CheckpointException(checkpoint.PathOf(key), key, $"the checkpoint stores this weight in 4 bits (bitsandbytes) but the model was asked for {layer.Format}; load it with load_in_4bit.");
            }
            plan.Add((layer, key));
        }
        return plan;
    }

    /// <summary>Reads and quantizes (or takes pre-quantized) every planned weight; floating-point ones are read in <paramref name="dtype"/> first, as transformers quantizes after casting.</summary>
    public static void Load(List<(QuantizedLinear Layer, string Key)> plan, MappedCheckpoint checkpoint, ScalarType dtype, Device device)
    {
        foreach (var (layer, key) in plan)
        {
            // No dispose scope here: the pre-quantized tensors become the layer's state; the float reads are disposed below.
            var storedType = StoredType(checkpoint, key);
            switch (layer)
            {
                case Linear4bit fourBit when checkpoint.Contains(key + ".absmax"):
                    var state = QuantState4Bit.FromStateDict(key, k => checkpoint.Contains(k) ? checkpoint.Read(k, StoredType(checkpoint, k), device) : null, device);
                    fourBit.Load(checkpoint.Read(key, ScalarType.Byte, device), state);
                    break;
                case Linear8bit eightBit when storedType == ScalarType.Int8:
                    var scbKey = key[..^"weight".Length] + "SCB";
                    if (!checkpoint.Contains(scbKey)) throw new CheckpointException(checkpoint.PathOf(key), key, $"an int8 weight needs its row scales {scbKey} (bitsandbytes' SCB).");
                    eightBit.Load(checkpoint.Read(key, ScalarType.Int8, device), checkpoint.Read(scbKey, ScalarType.Float32, device));
                    break;
                case Linear4bit fourBit:
                    using (var weight = checkpoint.Read(key, dtype, device, shareMapping: false)) fourBit.QuantizeFrom(weight);
                    break;
                case Linear8bit eightBit:
                    using (var weight = checkpoint.Read(key, dtype, device, shareMapping: false)) eightBit.QuantizeFrom(weight);
                    break;
            }
        }
    }

    private static ScalarType StoredType(MappedCheckpoint checkpoint, string key) =>
        SafeTensorsDTypes.TryGet(checkpoint.Info(key).DType, out var type, out _) ? type
            : throw new CheckpointException(checkpoint.PathOf(key), key, $"dtype {checkpoint.Info(key).DType} cannot be read.");
}
