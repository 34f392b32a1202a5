// Per-row adapters in one batch, following peft/tuners/lora/layer.py (LoraLayer._mixed_batch_forward).
using Peft.Tuners;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Peft.Methods.Lora;

public sealed partial class LoraLayer : IRowRoutedLayer
{
    /// <summary>
    /// The base layer runs once on the whole batch; each adapter's rows then go through its A and B once and
    /// their update is added back at those rows. Rows routed to the base model, or to an adapter this layer
    /// does not hold, keep the base output. The layer's active adapters are not read.
    /// </summary>
    private Tensor RoutedForward(Tensor input, AdapterRouting routing)
    {
        routing.CheckRows(input, $"{nameof(LoraLayer)} over {base_layer.GetType().Name}");
        if (MergedAdapters.Count > 0) throw new InvalidOperationException(((IRowRoutedLayer)this).RoutingBlocker(MergedAdapters[0]));
        var result = base_layer.call(input);
        using var scope = torch.NewDisposeScope();
        var dtype = result.dtype;
        foreach (var group in routing.Groups)
        {
            if (!_scaling.TryGetValue(group.Adapter, out var scaling)) continue;
            // A group that covers the whole batch needs no gather (the one-adapter batch costs what it did before).
            var index = group.Rows.Count == routing.Rows ? null : routing.IndexOf(group, input.device);
            var a = lora_A[group.Adapter];
            var dropout = lora_dropout[group.Adapter];
            var x = (index is null ? input : input.index_select(0, index)).to(a.weight!.dtype);
            Tensor update;
            double alpha;
            if (lora_magnitude_vector.TryGetValue(group.Adapter, out var dora))
            {
                // As forward(): the base output stands for W·x + bias unless dropout changed x.
                var dropped = dropout is not Identity && training;
                var own = dropped ? null : index is null ? result : result.index_select(0, index);
                if (dropped) x = dropout.call(x);
                (update, alpha) = (dora.Update(x, a, lora_B[group.Adapter], scaling, WeightOutIn, BaseBias, own), 1.0);
            }
            else
            {
                (update, alpha) = (lora_B[group.Adapter].call(a.call(dropout.call(x))), scaling);
            }
            result = index is null
                ? result.add(update, alpha: alpha)
                : result.to(update.dtype).index_add(0, index, update, alpha);
        }
        return result.to(dtype).MoveToOuterDisposeScope();
    }
}
