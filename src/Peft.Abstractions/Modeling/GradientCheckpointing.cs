using TorchSharp;
using static TorchSharp.torch;

namespace Peft.Modeling;

/// <summary>
/// A stack of transformer layers that can recompute each layer's forward in backward instead of keeping its
/// activations (transformers' <c>gradient_checkpointing</c>); <see cref="PreTrainedModel.GradientCheckpointingEnable"/>
/// switches every such stack of a model on.
/// </summary>
public interface IGradientCheckpointing
{
    /// <summary>Whether the layers are checkpointed while training with autograd on.</summary>
    bool GradientCheckpointing { get; set; }
}

/// <summary>
/// Per-layer activation checkpointing: the layer runs without autograd in forward, keeping only its inputs; backward
/// runs it again with autograd (the same random state, so dropout draws the same masks) and back-propagates through
/// the recomputed graph, accumulating the parameters' gradients and returning the gradient of every input that needs
/// one (PyTorch's reentrant <c>torch.utils.checkpoint</c>).
/// </summary>
public static class GradientCheckpoint
{
    /// <summary>
    /// <paramref name="layer"/>(<paramref name="hidden"/>, <paramref name="extras"/>), checkpointed when
    /// <paramref name="enabled"/>, the module is <paramref name="training"/> and autograd is on; otherwise a plain call.
    /// </summary>
    /// <param name="enabled">The stack's <see cref="IGradientCheckpointing.GradientCheckpointing"/>.</param>
    /// <param name="training">The stack's training mode (evaluation and generation never recompute).</param>
    /// <param name="layer">The layer's forward over its hidden states and the extras.</param>
    /// <param name="hidden">The layer's input (B, T, C).</param>
    /// <param name="cache">The key/value cache the layer would append to.</param>
    /// <param name="extras">The layer's other tensor inputs (masks, rotary tables). They are passed, not captured, so
    /// that backward gets handles of its own: the forward's dispose scope frees its handles long before backward runs.
    /// Those that need a gradient get it.</param>
    /// <exception cref="NotSupportedException">Checkpointing with a key/value cache (prefix tuning's past keys/values):
    /// recomputing would append to the cache twice, and the prefixes' gradients would not reach the prompt encoder.</exception>
    public static Tensor Run(bool enabled, bool training, Func<Tensor, Tensor?[], Tensor> layer, Tensor hidden, KeyValueCache? cache, params Tensor?[] extras)
    {
        if (!IsActive(enabled, training)) return layer(hidden, extras);
        return RunMany(enabled, training, inputs => [layer(inputs[0]!, inputs[1..])], cache, [hidden, .. extras])[0]!;
    }

    /// <summary>
    /// A layer with several tensor inputs and outputs (an encoder output, relative-position embeddings, a position bias
    /// the first layer computes and hands on), checkpointed as <see cref="Run"/> is. Every input that needs a gradient
    /// gets it; an output that needs none (a mask) costs nothing in backward.
    /// </summary>
    /// <param name="enabled">The stack's <see cref="IGradientCheckpointing.GradientCheckpointing"/>.</param>
    /// <param name="training">The stack's training mode.</param>
    /// <param name="layer">The layer's forward: inputs → outputs, null where absent; it must use only the tensors it is
    /// given (a captured tensor may be freed before backward) and return nulls in the same places when run again.</param>
    /// <param name="cache">The key/value caches the layer would append to (self- or cross-attention), or null.</param>
    /// <param name="inputs">The layer's tensor inputs, the hidden states first: when no input needs a gradient (frozen
    /// embeddings), the hidden states are made to need one, as PEFT's <c>enable_input_require_grads</c> does.</param>
    /// <returns>The layer's outputs.</returns>
    /// <exception cref="NotSupportedException">Checkpointing with a key/value cache.</exception>
    public static Tensor?[] RunMany(bool enabled, bool training, Func<Tensor?[], Tensor?[]> layer, KeyValueCache? cache, params Tensor?[] inputs)
    {
        if (!IsActive(enabled, training)) return layer(inputs);
        if (cache is not null)
        {
            throw new NotSupportedException("Gradient checkpointing cannot run with a key/value cache (prefix tuning's past keys/values, or use_cache in training); turn gradient checkpointing off for this model.");
        }
        if (inputs.Length == 0 || inputs[0] is null) throw new ArgumentException("A checkpointed layer's first input is its hidden states.", nameof(inputs));
        // The reference's companion for PEFT: with frozen embeddings no input of the first layer needs a gradient, and a
        // checkpointed layer whose inputs need none would get no backward at all (its adapters would not train).
        if (!inputs.Any(t => t is not null && t.requires_grad)) inputs = [inputs[0]!.detach().requires_grad_(), .. inputs[1..]];
        var call = new Call(layer, inputs.Select(t => t is not null && t.requires_grad).ToArray());
        // Each tensor is its own argument of apply: TorchSharp makes direct tensor arguments graph inputs, not arrays.
        var outputs = Recompute.apply([call, .. inputs]);
        var next = 0;
        return call.Present.Select(present => present ? outputs[next++] : null).ToArray();
    }

    private static bool IsActive(bool enabled, bool training) => enabled && training && torch.is_grad_enabled();

    /// <summary>What forward hands to backward besides tensors: the layer, which inputs need a gradient, and which
    /// outputs were present (apply returns only the present ones).</summary>
    private sealed class Call(Func<Tensor?[], Tensor?[]> layer, bool[] needsGrad)
    {
        public Func<Tensor?[], Tensor?[]> Layer { get; } = layer;

        public bool[] NeedsGrad { get; } = needsGrad;

        public bool[] Present { get; set; } = [];

        public long? CudaSeed { get; set; }
    }

    private sealed class Recompute : autograd.MultiTensorFunction<Recompute>
    {
        public override string Name => "GradientCheckpoint";

        public override List<Tensor> forward(autograd.AutogradContext ctx, params object[] vars)
        {
            var call = (Call)vars[0];
            var inputs = vars.Skip(1).Select(v => v as Tensor).ToArray();
            ctx.save_data("call", call);
            // TorchSharp cannot read the CUDA generator's state, so on CUDA the layer runs from a seed of its own,
            // set again in backward.
            if (inputs[0]!.device_type == DeviceType.CUDA)
            {
                call.CudaSeed = torch.randint(long.MaxValue, [1], ScalarType.Int64).item<long>();
                torch.cuda.manual_seed(call.CudaSeed.Value);
            }
            // The random state too, so that dropout draws the same masks when the layer runs again.
            ctx.save_for_backward([torch.get_rng_state(), .. inputs.Select(t => t!)]);
            // Gradients of unused outputs (the last layer's position bias) stay undefined instead of zeros to propagate.
            ctx.set_materialize_grads(false);
            var outputs = call.Layer(inputs);
            call.Present = outputs.Select(o => o is not null).ToArray();
            return outputs.OfType<Tensor>().ToList();
        }

        public override List<Tensor> backward(autograd.AutogradContext ctx, List<Tensor> grad_outputs)
        {
            using var scope = torch.NewDisposeScope();
            var call = (Call)ctx.get_data("call");
            var saved = ctx.get_saved_variables();
            var inputs = saved.Skip(1).Select((t, i) => t is null ? null : call.NeedsGrad[i] ? t.detach().requires_grad_() : t).ToArray();
            var state = torch.get_rng_state();
            torch.set_rng_state(saved[0]);
            if (call.CudaSeed is long seed) torch.cuda.manual_seed(seed);
            try
            {
                using var grad = torch.enable_grad();
                var outputs = call.Layer(inputs).OfType<Tensor>().ToList();
                // Only outputs that depend on something trainable and whose gradient is defined: a mask handed on from
                // the first layer is an output here, but the recomputed one needs no gradient.
                var used = outputs.Zip(grad_outputs).Where(p => p.First.requires_grad && !p.Second.IsInvalid).ToList();
                if (used.Count > 0) torch.autograd.backward(used.Select(p => p.First).ToList(), used.Select(p => p.Second).ToList());
            }
            finally
            {
                torch.set_rng_state(state);
            }
            // One entry per argument of apply: the call (not a tensor) and the inputs that need no gradient have none.
            return [null!, .. inputs.Select((t, i) => call.NeedsGrad[i] ? t!.grad?.MoveToOuterDisposeScope()! : null!)];
        }
    }
}
