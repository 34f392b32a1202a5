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
    /// Freezes every parameter and casts every float16/bfloat16 parameter that is not quantized (norms, embeddings,
    /// heads, biases) to float32 for stability, as the reference does; tied weights stay tied. With
    /// <paramref name="useGradientCheckpointing"/> (the reference's default) it also makes the input embeddings' output
    /// require a gradient (<c>enable_input_require_grads</c>, so that checkpointed blocks see an input with a gradient)
    /// and turns gradient checkpointing on, or warns where the architecture has none.
    /// Returns a handle that removes the input-gradient hook when disposed, or null.
    /// </summary>
    public static IDisposable? PrepareForKbitTraining(PreTrainedModel model, bool useGradientCheckpointing = true)
    {
        ArgumentNullException.ThrowIfNull(model);
        foreach (var parameter in model.parameters()) parameter.requires_grad = false;
        ModelQuantization.CastParameters(model, type => type is ScalarType.Float16 or ScalarType.BFloat16, ScalarType.Float32);
        if (!useGradientCheckpointing) return null;
        if (model.SupportsGradientCheckpointing) model.GradientCheckpointingEnable();
        else PeftLog.Warn($"prepare_model_for_kbit_training: '{model.Config.ModelType}' models have no gradient checkpointing here; training runs without it.");
        var remover = model.InputEmbeddings.register_forward_hook((_, _, output) => output.requires_grad_(true));
        return new Removal(remover.remove);
    }

    private sealed class Removal(Action remove) : IDisposable
    {
        public void Dispose() => remove();
    }
}
