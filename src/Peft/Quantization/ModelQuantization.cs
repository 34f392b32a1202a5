using Peft.Modeling;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Peft.Quantization;

/// <summary>
/// Puts quantized layers in a model's Linear slots and takes them out again (transformers' <c>replace_with_bnb_linear</c>
/// and its reverse). Output heads and skipped modules stay in floating point.
/// </summary>
public static class ModelQuantization
{
    /// <summary>
    /// Quantizes every Linear slot of <paramref name="model"/>'s body from its current weight, one layer at a time
    /// (each float weight is released once its quantized copy exists). Returns the paths quantized.
    /// </summary>
    /// <exception cref="ArgumentException">The options contradict each other.</exception>
    public static IReadOnlyList<string> Quantize(PreTrainedModel model, QuantizationOptions options)
    {
        options.Validate();
        var done = new List<string>();
        foreach (var (path, owner, slot, linear) in QuantizableSlots(model, options))
        {
            QuantizedLinear layer = options.Type == QuantType.Int8
                ? Linear8bit.FromLinear(linear, linear.weight!.dtype)
                : Linear4bit.FromLinear(linear, options.Type, options.Bnb4BitUseDoubleQuant, options.ComputeScalarType);
            owner.ReplaceSlot(slot, layer);
            linear.weight!.Dispose();
            done.Add(path);
        }
        return done;
    }

    /// <summary>
    /// Replaces the Linear slots to quantize by empty quantized layers that the checkpoint loader fills (the bias
    /// parameter moves over and is loaded as any other). <paramref name="modelDType"/> is int8's compute dtype.
    /// </summary>
    internal static int ReplaceWithEmpty(PreTrainedModel model, QuantizationOptions options, ScalarType modelDType)
    {
        options.Validate();
        var count = 0;
        foreach (var (_, owner, slot, linear) in QuantizableSlots(model, options))
        {
            var weight = linear.weight!;
            var (inFeatures, outFeatures) = (weight.shape[1], weight.shape[0]);
            QuantizedLinear layer = options.Type == QuantType.Int8
                ? new Linear8bit(inFeatures, outFeatures, linear.bias, modelDType)
                : new Linear4bit(inFeatures, outFeatures, linear.bias, options.Type, options.Bnb4BitUseDoubleQuant, options.ComputeScalarType);
            owner.ReplaceSlot(slot, layer);
            weight.Dispose();
            count++;
        }
        return count;
    }

    /// <summary>
    /// Replaces every quantized layer held directly in a slot by a plain Linear in <paramref name="dtype"/> (after a merge:
    /// a dense model). Returns how many were replaced.
    /// </summary>
    public static int Dequantize(nn.Module model, ScalarType dtype)
    {
        var count = 0;
        foreach (var (_, owner, slot) in Slots(model).ToList())
        {
            if (owner.GetSlot(slot) is not QuantizedLinear quantized) continue;
            owner.ReplaceSlot(slot, quantized.ToLinear(dtype));
            quantized.Dispose();
            count++;
        }
        return count;
    }

    /// <summary>
    /// Replaces every parameter whose dtype <paramref name="which"/> selects by a copy in <paramref name="dtype"/>, keeping
    /// its requires_grad; a tensor shared by several modules (tied weights) stays shared.
    /// </summary>
    internal static void CastParameters(nn.Module model, Func<ScalarType, bool> which, ScalarType dtype)
    {
        using var noGrad = torch.no_grad();
        var converted = new Dictionary<Tensor, Parameter>(ReferenceEqualityComparer.Instance);
        var byHandle = new Dictionary<IntPtr, Parameter>();
        foreach (var module in model.modules().Prepend(model).ToList())
        {
            foreach (var (name, parameter) in module.named_parameters(recurse: false).ToList())
            {
                if (!which(parameter.dtype)) continue;
                if (!byHandle.TryGetValue(parameter.Handle, out var cast))
                {
                    cast = new Parameter(parameter.detach().to(dtype), requires_grad: parameter.requires_grad);
                    byHandle[parameter.Handle] = cast;
                    converted[parameter] = cast;   // keeps the old tensor alive, so its handle is not reused meanwhile
                }
                CheckpointLoader.ReplaceParameter(module, name, cast);
            }
        }
    }

    /// <summary>Bytes held by the quantized layers' weights and states.</summary>
    public static long QuantizedBytes(nn.Module model) => model.modules().OfType<QuantizedLinear>().Sum(q => q.QuantizedBytes);

    /// <summary>
    /// Whether <paramref name="path"/> stays in floating point: it is, or is inside, an output head or a module named in
    /// <paramref name="skip"/> (a name matches the whole path, its last components, or a module the path lies inside).
    /// </summary>
    public static bool KeepsFloatingPoint(PreTrainedModel model, string path, IReadOnlyList<string> skip) =>
        model.HeadModuleNames.Any(h => path == h || path.StartsWith(h + ".", StringComparison.Ordinal))
        || skip.Any(s => path == s || path.EndsWith("." + s, StringComparison.Ordinal) || path.StartsWith(s + ".", StringComparison.Ordinal)
            || path.Contains("." + s + ".", StringComparison.Ordinal));

    private static IEnumerable<(string Path, IModuleSlots Owner, string Slot, Linear Linear)> QuantizableSlots(PreTrainedModel model, QuantizationOptions options)
    {
        foreach (var (path, owner, slot) in Slots(model).ToList())
        {
            if (owner.GetSlot(slot) is Linear linear && !KeepsFloatingPoint(model, path, options.LlmInt8SkipModules)) yield return (path, owner, slot, linear);
        }
    }

    private static IEnumerable<(string Path, IModuleSlots Owner, string Slot)> Slots(nn.Module model)
    {
        foreach (var (prefix, module) in model.named_modules().Prepend(("", model)))
        {
            if (module is not IModuleSlots slots) continue;
            foreach (var slot in slots.SlotNames) yield return (prefix.Length == 0 ? slot : prefix + "." + slot, slots, slot);
        }
    }
}
