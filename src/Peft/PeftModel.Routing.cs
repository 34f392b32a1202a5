using Peft.Modeling;
using Peft.Tuners;
using TorchSharp;
using static TorchSharp.torch;

namespace Peft;

/// <summary>Per-row adapters (the reference's <c>adapter_names</c>): one batch, a different adapter per row.</summary>
public sealed partial class PeftModel
{
    /// <summary>The name that routes a row to the base model alone (<see cref="AdapterRouting.BaseModelName"/>).</summary>
    public const string BaseModelName = AdapterRouting.BaseModelName;

    /// <summary>
    /// Held for reading by every routed forward step, for writing while adapters are added or removed through
    /// <see cref="ChangeAdapters"/>: a step never sees a layer's adapter dictionaries half-changed.
    /// </summary>
    private readonly ReaderWriterLockSlim _adapterSet = new(LockRecursionPolicy.SupportsRecursion);

    /// <summary>
    /// A forward pass in which row <c>i</c> uses adapter <c>adapterNames[i]</c> (<see cref="BaseModelName"/>: none).
    /// Each adapter's rows go through its weights once. The model's active adapter, <see cref="DisableAdapter"/>
    /// and <see cref="SetAdapter"/> are neither read nor changed, so calls from several threads may run at once.
    /// </summary>
    /// <param name="inputs">Batch-first inputs.</param>
    /// <param name="adapterNames">One adapter name per row.</param>
    /// <exception cref="ArgumentException">A name is unknown, or the count differs from the batch.</exception>
    /// <exception cref="NotSupportedException">An adapter cannot be mixed per row (prompt learning, a method without per-row support, merged weights).</exception>
    public ModelOutputs Forward(ModelInputs inputs, IReadOnlyList<string> adapterNames)
    {
        using var scope = EnterRouting(adapterNames, BatchOf(inputs));
        return forward(inputs);
    }

    /// <summary>
    /// Decoding with an adapter per row and options per row (sampling, seed, stop ids and strings, token limit):
    /// every row comes out as it would alone with its adapter and options. Prompts of different lengths are
    /// left-padded, with <paramref name="attentionMask"/> marking the padding.
    /// </summary>
    /// <param name="inputIds">Prompt ids, (batch, seq); for encoder-decoder models, the encoder input.</param>
    /// <param name="attentionMask">Padding mask of the prompt, or null for all ones.</param>
    /// <param name="adapterNames">One adapter name per row (<see cref="BaseModelName"/> for the base model).</param>
    /// <param name="rowOptions">One options object per row, or one for all; null is greedy with the defaults.</param>
    /// <param name="observer">Sees each step's tokens and may stop rows; may be null.</param>
    /// <exception cref="ArgumentException">As <see cref="Forward(ModelInputs, IReadOnlyList{string})"/>, or bad options (named).</exception>
    public GeneratedBatch Generate(Tensor inputIds, Tensor? attentionMask, IReadOnlyList<string> adapterNames,
        IReadOnlyList<GenerationOptions>? rowOptions = null, IGenerationObserver? observer = null)
    {
        using var scope = EnterRouting(adapterNames, inputIds.shape[0]);
        return Generation.GenerateRows(this, Model.Config, inputIds, attentionMask, rowOptions ?? [new GenerationOptions()], Model.IsEncoderDecoder, observer);
    }

    /// <summary>
    /// Runs <paramref name="change"/> (adding, loading or deleting adapters) while no routed forward step is in
    /// progress; steps that arrive meanwhile wait for it. Routed calls in progress between two steps go on.
    /// </summary>
    /// <param name="change">The change, e.g. <c>() =&gt; model.LoadAdapter(dir, name)</c>.</param>
    public void ChangeAdapters(Action change)
    {
        _adapterSet.EnterWriteLock();
        try
        {
            change();
        }
        finally
        {
            _adapterSet.ExitWriteLock();
        }
    }

    /// <summary>Why <paramref name="adapterName"/> cannot be routed per row, or null when it can (checked on every layer).</summary>
    public string? RoutingBlocker(string adapterName)
    {
        if (adapterName == BaseModelName) return LayerBlocker(null);
        if (!_adapters.TryGetValue(adapterName, out var adapter)) return $"no adapter named '{adapterName}'; loaded: {string.Join(", ", _adapters.Keys.DefaultIfEmpty("none"))}";
        if (adapter.OwnedModule is not null)
        {
            return $"adapter '{adapterName}' is {adapter.Config.PeftType}, a prompt-learning method that changes the inputs of the whole batch, so it cannot be mixed per row";
        }
        return LayerBlocker(adapterName);
    }

    private string? LayerBlocker(string? adapterName)
    {
        foreach (var (path, module) in Model.named_modules())
        {
            switch (module)
            {
                case IRowRoutedLayer routed when routed.RoutingBlocker(adapterName ?? BaseModelName) is { } reason:
                    return $"layer '{path}': {reason}";
                case IAdapterLayer layer when module is not IRowRoutedLayer:
                    return $"layer '{path}' is a {module.GetType().Name}, which has no per-row adapter support (supported: LoRA on Linear, Conv1D and Embedding layers, IA3)";
            }
        }
        return null;
    }

    private IDisposable EnterRouting(IReadOnlyList<string> adapterNames, long batch)
    {
        ArgumentNullException.ThrowIfNull(adapterNames);
        if (adapterNames.Count != batch) throw new ArgumentException($"Got {adapterNames.Count} adapter names for a batch of {batch} rows; give one per row.", nameof(adapterNames));
        _adapterSet.EnterReadLock();
        try
        {
            foreach (var name in adapterNames.Distinct())
            {
                if (name != BaseModelName && !_adapters.ContainsKey(name))
                {
                    throw new ArgumentException($"No adapter named '{name}'; loaded: {string.Join(", ", _adapters.Keys.DefaultIfEmpty("none"))} (or {BaseModelName} for the base model).", nameof(adapterNames));
                }
                if (RoutingBlocker(name) is { } reason)
                {
                    throw new NotSupportedException($"Cannot route rows to '{name}': {reason}.");
                }
            }
        }
        finally
        {
            _adapterSet.ExitReadLock();
        }
        return AdapterRouting.Enter(new AdapterRouting(this, adapterNames));
    }

    /// <summary>One routed step: the adapter set cannot change during it, and an adapter removed since the call began is an error, not the base model.</summary>
    private ModelOutputs RoutedForward(AdapterRouting routing, ModelInputs inputs)
    {
        _adapterSet.EnterReadLock();
        try
        {
            foreach (var group in routing.Groups)
            {
                if (group.Adapter != BaseModelName && !_adapters.ContainsKey(group.Adapter))
                {
                    throw new InvalidOperationException($"Adapter '{group.Adapter}' was removed while a call routed rows to it.");
                }
            }
            return Model.forward(inputs);
        }
        finally
        {
            _adapterSet.ExitReadLock();
        }
    }

    private static long BatchOf(ModelInputs inputs) =>
        (inputs.InputIds ?? inputs.InputsEmbeds ?? inputs.EncoderHiddenStates ?? inputs.DecoderInputIds ?? inputs.PixelValues)?.shape[0]
        ?? throw new ArgumentException("The inputs carry no tensor to take the batch size from.", nameof(inputs));
}
