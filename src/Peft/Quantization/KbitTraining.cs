// Following peft/utils/other.py (prepare_model_for_kbit_training).
using Peft.Modeling;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Peft.Quantization;

/// <summary>The reference's <c>prepare_model_for_kbit_training</c>: what a quantized base needs before LoRA trains on it.</summary>
public static class KbitTraining
{
    /// <summary>
    /// Freezes every parameter, casts every float16/bfloat16 parameter that is not quantized (norms, embeddings,
    /// heads, biases) to float32 for stability, as the reference does, and with <paramref name="inputRequireGrads"/> makes
    /// the input embeddings' output require a gradient (the reference's <c>enable_input_require_grads</c>, which
    /// gradient checkpointing needs so that checkpointed blocks see an input with a gradient). Tied weights stay tied.
    /// Returns a handle that removes the input-gradient hook when disposed, or null.
    /// </summary>
    public static IDisposable? PrepareForKbitTraining(PreTrainedModel model, bool inputRequireGrads = true)
    {
        ArgumentNullException.ThrowIfNull(model);
        foreach (var parameter in model.parameters()) parameter.requires_grad = false;
        ModelQuantization.CastParameters(model, type => type is ScalarType.Float16 or ScalarType.BFloat16, ScalarType.Float32);
        if (!inputRequireGrads) return null;
        var remover = model.InputEmbeddings.register_forward_hook((_, _, output) => output.requires_grad_(true));
        return new Removal(remover.remove);
    }

    private sealed class Removal(Action remove) : IDisposable
    {
        public void Dispose() => remove();
    }
}
