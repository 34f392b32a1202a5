using System.Reflection;
using Peft.Checkpoints;
using Peft.Modeling;
using Peft.Plugins;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Peft;

/// <summary>
/// Builds a model without initialising the weights a checkpoint provides, then fills each parameter straight
/// from the memory-mapped file in the target dtype and device, one tensor at a time (transformers'
/// <c>init_empty_weights</c> + <c>load_state_dict(assign=True)</c>).
/// </summary>
/// <remarks>
/// The module tree is built with TorchSharp's default device switched to <c>meta</c>: parameters then have shapes
/// but no storage, and their random initialisation costs nothing. TorchSharp's default device is process-wide, so
/// the switch is held under a lock for the few milliseconds the build takes and restored at once; tensors that
/// other threads create in that window without naming a device would land on <c>meta</c> too.
/// Each meta parameter is then replaced by a new one (the same way TorchSharp's <c>Module.to</c> replaces
/// parameters), which is shared by every module that held the meta one, so weight tying survives. Weights the
/// checkpoint lacks are allowed only in output heads, and are initialised as TorchSharp initialises them.
/// </remarks>
internal static class CheckpointLoader
{
    private static readonly Lock DefaultDeviceGate = new();
    private static readonly Device Meta = new("meta");

    private static readonly MethodInfo RegisterParameter = typeof(nn.Module).GetMethod(
        "ConditionallyRegisterParameter", BindingFlags.NonPublic | BindingFlags.Instance, [typeof(string), typeof(Parameter)])
        ?? throw new MissingMethodException("TorchSharp's Module.ConditionallyRegisterParameter(string, Parameter) is missing.");

    private static readonly MethodInfo RegisterBuffer = typeof(nn.Module).GetMethod(
        "ConditionallyRegisterBuffer", BindingFlags.NonPublic | BindingFlags.Instance, [typeof(string), typeof(Tensor), typeof(bool)])
        ?? throw new MissingMethodException("TorchSharp's Module.ConditionallyRegisterBuffer(string, Tensor, bool) is missing.");

    /// <summary>Builds <paramref name="task"/>'s model on the meta device: every tensor has its shape and dtype, none has storage.</summary>
    public static PreTrainedModel BuildEmpty(IArchitecture architecture, ModelConfig config, TaskType task)
    {
        lock (DefaultDeviceGate)
        {
            var previous = torch.get_default_device();
            torch.set_default_device(Meta);
            try
            {
                return architecture.Build(config, task);
            }
            finally
            {
                torch.set_default_device(previous);
            }
        }
    }

    /// <summary>
    /// Gives every parameter and buffer of <paramref name="model"/> (built by <see cref="BuildEmpty"/>, or built normally, whose initial values are then replaced) its value
    /// from <paramref name="checkpoint"/>, floating-point ones in <paramref name="dtype"/>, all on
    /// <paramref name="device"/>. Shapes are checked before anything is read.
    /// </summary>
    /// <exception cref="CheckpointException">A weight the model needs is missing or has another shape.</exception>
    public static void Load(PreTrainedModel model, MappedCheckpoint checkpoint, ScalarType dtype, Device device)
    {
        var planning = LoadTrace.Phase("plan");
        // Checkpoints in the classic spelling (transformers 4) load into run-time names: look keys up by their current name.
        var available = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var stored in checkpoint.Names)
        {
            available.TryAdd(model.ClassicNames.Rules.Count > 0 ? model.ClassicNames.ToCurrent(stored) : stored, stored);
        }
        var prefix = model.BaseModelPrefix is { } p && !available.Keys.Any(k => k.StartsWith(p + ".", StringComparison.Ordinal)) ? p + "." : "";
        string KeyOf(string name) => prefix.Length > 0 && name.StartsWith(prefix, StringComparison.Ordinal) ? name[prefix.Length..] : name;
        var heads = model.HeadModuleNames;
        bool InHead(string name) => heads.Any(h => name.StartsWith(h + ".", StringComparison.Ordinal));

        // Tied slots (a head sharing the embedding's weight) take their source's new tensor once it is loaded.
        var all = Slots(model);
        var byName = all.SelectMany(s => s.Names.Select(n => (n, s))).ToDictionary(x => x.n, x => x.s, StringComparer.Ordinal);
        var tied = new List<(Slot Tied, Slot Source)>();
        foreach (var (tiedName, sourceName) in model.TiedWeights)
        {
            if (byName.TryGetValue(tiedName, out var t) && byName.TryGetValue(sourceName, out var source) && t != source) tied.Add((t, source));
        }
        // A quantized layer's weight is read and quantized (or read pre-quantized) by QuantizedLoading, not assigned.
        var quantized = QuantizedLoading.Layers(model);
        var slots = all.Where(s => !tied.Any(t => t.Tied == s) && !(s.Owner is Quantization.QuantizedLinear && s.Name == "weight")).ToList();
        var quantizedPlan = QuantizedLoading.Plan(quantized, checkpoint, n => available.TryGetValue(KeyOf(n), out var k) ? k : null);

        // Plan first (shapes, missing keys), so that a bad checkpoint fails before a byte is read.
        var plan = new List<(Slot Slot, string? Key)>();
        foreach (var slot in slots)
        {
            var current = slot.Names.Select(KeyOf).FirstOrDefault(available.ContainsKey);
            var key = current is null ? null : available[current];
            if (key is null)
            {
                if (!slot.Names.All(InHead))
                {
                    throw new CheckpointException(checkpoint.Source, KeyOf(slot.Names[0]), "the model needs this weight but the checkpoint has none.");
                }
            }
            else
            {
                var stored = checkpoint.Info(key).Shape;
                var shape = slot.Tensor.shape;
                if (!stored.SequenceEqual(shape))
                {
                    throw new CheckpointException(checkpoint.PathOf(key), key,
                        $"shape [{string.Join(", ", stored)}] does not fit the model's [{string.Join(", ", shape)}].");
                }
            }
            plan.Add((slot, key));
        }
        planning?.Stop();

        using var noGrad = torch.no_grad();
        var loaded = new Dictionary<Slot, Tensor>();
        foreach (var (slot, key) in plan)
        {
            var old = slot.Tensor;
            var type = old.dtype.IsFloatingPointType() ? dtype : old.dtype;
            var read = LoadTrace.Phase("read");
            var value = key is null ? Initialise(slot, type, device) : checkpoint.Read(key, type, device);
            read?.Stop();
            using var assign = LoadTrace.Phase("assign");
            if (slot.IsParameter) value = new Parameter(value, requires_grad: old.requires_grad);
            Assign(slot, value);
            loaded[slot] = value;
        }
        QuantizedLoading.Load(quantizedPlan, checkpoint, dtype, device);
        foreach (var (t, source) in tied)
        {
            // The very parameter object, as the model's own tying makes: state_dict lists both names, named_parameters
            // (which tells parameters apart by handle) one, and a gradient and an optimizer step reach it once.
            Assign(t, loaded[source]);
        }
        // Only now: a meta tensor may be held by more than one module until every slot is reassigned.
        using var release = LoadTrace.Phase("release");
        foreach (var slot in all.Where(s => !(s.Owner is Quantization.QuantizedLinear && s.Name == "weight"))) slot.Tensor.Dispose();
    }

    /// <summary>A tensor held by a module under a name (a parameter or a buffer), and every full name it is known by.</summary>
    private sealed record Slot(nn.Module Owner, string Name, IReadOnlyList<string> Names, Tensor Tensor, bool IsParameter)
    {
        public bool Equals(Slot? other) => ReferenceEquals(this, other);

        public override int GetHashCode() => System.Runtime.CompilerServices.RuntimeHelpers.GetHashCode(this);
    }

    private static List<Slot> Slots(nn.Module model)
    {
        // A module reachable by two paths (T5's shared embedding) is one slot with both names.
        var paths = new Dictionary<nn.Module, List<string>>(ReferenceEqualityComparer.Instance);
        foreach (var (path, module) in model.named_modules().Prepend(("", model)))
        {
            if (!paths.TryGetValue(module, out var list)) paths.Add(module, list = []);
            list.Add(path.Length == 0 ? "" : path + ".");
        }
        var slots = new List<Slot>();
        foreach (var (module, prefixes) in paths)
        {
            foreach (var (name, parameter) in module.named_parameters(recurse: false))
            {
                slots.Add(new(module, name, prefixes.Select(p => p + name).ToList(), parameter, true));
            }
            foreach (var (name, buffer) in module.named_buffers(recurse: false))
            {
                slots.Add(new(module, name, prefixes.Select(p => p + name).ToList(), buffer, false));
            }
        }
        return slots;
    }

    /// <summary>Replaces <paramref name="owner"/>'s parameter <paramref name="name"/> by <paramref name="value"/>, as loading does.</summary>
    public static void ReplaceParameter(nn.Module owner, string name, Parameter value) => Assign(new Slot(owner, name, [name], value, true), value);

    // As TorchSharp's Module._toEpilog: a settable public property of that name (Linear.weight), else the
    // registration plus the field that holds it.
    private static void Assign(Slot slot, Tensor value)
    {
        var owner = slot.Owner;
        var type = owner.GetType();
        var property = type.GetProperty(slot.Name, BindingFlags.Public | BindingFlags.Instance);
        if (property is { CanWrite: true } && property.PropertyType.IsAssignableFrom(value.GetType()))
        {
            property.SetValue(owner, value);
            return;
        }
        if (slot.IsParameter) RegisterParameter.Invoke(owner, [slot.Name, value]);
        else RegisterBuffer.Invoke(owner, [slot.Name, value, true]);
        for (var t = type; t is not null && t != typeof(object); t = t.BaseType)
        {
            var field = t.GetFields(BindingFlags.NonPublic | BindingFlags.Public | BindingFlags.Instance | BindingFlags.DeclaredOnly)
                .FirstOrDefault(f => (f.GetCustomAttribute<TorchSharp.Utils.ComponentNameAttribute>()?.Name ?? f.Name) == slot.Name && f.FieldType.IsAssignableFrom(value.GetType()));
            if (field is not null)
            {
                field.SetValue(owner, value);
                return;
            }
        }
    }

    // TorchSharp's own initialisation of the layers heads are made of (Linear, Embedding, LayerNorm, GPT-2's
    // Conv1D); a head the checkpoint lacks gets it, as it did when models were built with initialised weights.
    private static Tensor Initialise(Slot slot, ScalarType dtype, Device device)
    {
        var shape = slot.Tensor.shape;
        var value = torch.empty(shape, dtype: dtype, device: device);
        switch (slot.Owner, slot.Name)
        {
            case (Linear, "weight"):
                nn.init.kaiming_uniform_(value, a: Math.Sqrt(5));
                break;
            case (Linear linear, "bias"):
                var fanIn = linear.weight.shape[1];
                var bound = fanIn > 0 ? 1 / Math.Sqrt(fanIn) : 0;
                nn.init.uniform_(value, -bound, bound);
                break;
            case (Embedding embedding, "weight"):
                nn.init.normal_(value);
                if (Layers.Embeddings.PaddingIndexOf(embedding) is { } padding) value[padding].zero_();
                break;
            case (Layers.Conv1D, "weight"):
                nn.init.normal_(value, std: 0.02);
                break;
            case (_, "bias"):
                value.zero_();
                break;
            case (LayerNorm, "weight"):
                value.fill_(1);
                break;
            default:
                value.Dispose();
                throw new CheckpointException("(initialisation)", slot.Names[0],
                    $"the checkpoint lacks this head weight and a {slot.Owner.GetType().Name}.{slot.Name} cannot be initialised here; provide it in the checkpoint.");
        }
        return value;
    }
}

/// <summary>Scalar-type facts TorchSharp keeps internal.</summary>
internal static class ScalarTypes
{
    /// <summary>Whether <paramref name="type"/> is a floating-point type (the ones a model's dtype applies to).</summary>
    public static bool IsFloatingPointType(this ScalarType type) =>
        type is ScalarType.Float16 or ScalarType.BFloat16 or ScalarType.Float32 or ScalarType.Float64;
}
