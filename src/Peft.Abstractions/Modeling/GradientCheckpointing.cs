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
/// Per-layer activation checkpointing: the layer runs without autograd in forward, keeping only its input; backward
/// runs it again with autograd (the same random state, so dropout draws the same mask) and back-propagates through
/// the recomputed graph, accumulating the parameters' gradients and returning the input's (PyTorch's reentrant
/// <c>torch.utils.checkpoint</c>).
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
    /// <param name="extras">The layer's other tensor inputs (masks, rotary tables), which need no gradient. They are
    /// passed, not captured, so that backward gets handles of its own: the forward's dispose scope frees its handles
    /// long before backward runs.</param>
    /// <exception cref="NotSupportedException">Checkpointing with a key/value cache (prefix tuning's past keys/values):
    /// recomputing would append to the cache twice, and the prefixes' gradients would not reach the prompt encoder;
    /// or an extra that needs a gradient.</exception>
    public static Tensor Run(bool enabled, bool training, Func<Tensor, Tensor?[], Tensor> layer, Tensor hidden, KeyValueCache? cache, params Tensor?[] extras)
    {
        if (!enabled || !training || !torch.is_grad_enabled()) return layer(hidden, extras);
        if (cache is not null)
        {
            throw new NotSupportedException("Gradient checkpointing cannot run with a key/value cache (prefix tuning's past keys/values, or use_cache in training); turn gradient checkpointing off for this model.");
        }
        if (extras.Any(e => e is not null && e.requires_grad))
        {
            throw new NotSupportedException("Gradient checkpointing recomputes a layer from its hidden states alone; another input of the layer needs a gradient here.");
        }
        // The reference's companion for PEFT (enable_input_require_grads): with frozen embeddings the first layer's
        // input needs no gradient, and a checkpointed layer whose inputs need none would get no backward at all.
        if (!hidden.requires_grad) hidden = hidden.detach().requires_grad_();
        return Recompute.apply(layer, hidden, extras);
    }

    private sealed class Recompute : autograd.SingleTensorFunction<Recompute>
    {
        public override string Name => "GradientCheckpoint";

        public override Tensor forward(autograd.AutogradContext ctx, params object[] vars)
        {
            var (layer, hidden, extras) = ((Func<Tensor, Tensor?[], Tensor>)vars[0], (Tensor)vars[1], (Tensor?[])vars[2]);
            ctx.save_data("layer", layer);
            ctx.save_data("present", extras.Select(e => e is not null).ToArray());
            // The random state too, so that dropout draws the same masks when the layer runs again.
            ctx.save_for_backward([hidden, torch.get_rng_state(), .. extras.OfType<Tensor>()]);
            return layer(hidden, extras);
        }

        public override List<Tensor> backward(autograd.AutogradContext ctx, Tensor grad_output)
        {
            using var scope = torch.NewDisposeScope();
            var layer = (Func<Tensor, Tensor?[], Tensor>)ctx.get_data("layer");
            var saved = ctx.get_saved_variables();
            var input = saved[0].detach().requires_grad_();
            var present = (bool[])ctx.get_data("present");
            var next = 2;
            var extras = present.Select(p => p ? saved[next++] : null).ToArray();
            var state = torch.get_rng_state();
            torch.set_rng_state(saved[1]);
            try
            {
                using var grad = torch.enable_grad();
                torch.autograd.backward([layer(input, extras)], [grad_output]);
            }
            finally
            {
                torch.set_rng_state(state);
            }
            // One entry per argument of apply: the layer and the extras (an array, not a graph input) have none.
            return [null!, input.grad!.MoveToOuterDisposeScope(), null!];
        }
    }
}
