using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Peft.Modeling;

// `model.to(dtype)` / `model.to(device)` keep tied weights tied, as PyTorch's Module.to does (it converts a shared
// parameter once, in place). TorchSharp converts module by module and gives each module that held the shared parameter
// its own new one: T5's and BART's `shared`, `encoder.embed_tokens`, `decoder.embed_tokens` and tied `lm_head` came
// back as four weights (named_parameters longer, an optimizer stepping each copy apart, a trained embedding that the
// head no longer reads). The parameters shared before the conversion are shared again after it.
public abstract partial class PreTrainedModel
{
    /// <inheritdoc />
    protected override nn.Module _to(ScalarType dtype, bool non_blocking) => KeepingTies(() => base._to(dtype, non_blocking));

    /// <inheritdoc />
    protected override nn.Module _to(DeviceType deviceType, int deviceIndex, bool non_blocking) =>
        KeepingTies(() => base._to(deviceType, deviceIndex, non_blocking));

    /// <inheritdoc />
    protected override nn.Module _to(Device device, ScalarType dtype, bool non_blocking) =>
        KeepingTies(() => base._to(device, dtype, non_blocking));

    private PreTrainedModel KeepingTies(Action convert)
    {
        var shared = SharedParameters();
        convert();
        Retie(shared);
        return this;
    }

    /// <summary>Every parameter more than one module registered, as the (module, parameter name) pairs that hold it.</summary>
    private List<List<(nn.Module Owner, string Name)>> SharedParameters()
    {
        // TorchSharp tells parameters apart by native handle (named_parameters lists a handle once).
        var holders = new Dictionary<IntPtr, List<(nn.Module Owner, string Name)>>();
        var visited = new HashSet<nn.Module>(ReferenceEqualityComparer.Instance);
        foreach (var (_, module) in named_modules().Prepend(("", this)))
        {
            if (!visited.Add(module)) continue;
            foreach (var (name, parameter) in module.named_parameters(recurse: false))
            {
                if (!holders.TryGetValue(parameter.Handle, out var list)) holders.Add(parameter.Handle, list = []);
                list.Add((module, name));
            }
        }
        return holders.Values.Where(list => list.Count > 1).ToList();
    }

    private static void Retie(List<List<(nn.Module Owner, string Name)>> shared)
    {
        foreach (var holders in shared)
        {
            var source = Registered(holders[0]);
            foreach (var holder in holders.Skip(1))
            {
                if (Registered(holder).Handle == source.Handle) continue;
                // Linear's weight setter disposes the parameter it replaces: here the holder's own converted copy.
                switch (holder.Owner)
                {
                    case Embedding embedding when holder.Name == "weight": embedding.weight = source; break;
                    case Linear linear when holder.Name == "weight": linear.weight = source; break;
                    default:
                        throw new InvalidOperationException(
                            $"{holder.Owner.GetName()}.{holder.Name} shares a parameter with {holders[0].Owner.GetName()}.{holders[0].Name}, " +
                            "and this module kind cannot be tied again after a conversion.");
                }
            }
        }
    }

    private static Parameter Registered((nn.Module Owner, string Name) holder) =>
        holder.Owner.named_parameters(recurse: false).First(p => p.name == holder.Name).parameter;
}
