using System.Diagnostics;

namespace Peft.Modeling;

/// <summary>
/// The phases of <see cref="PeftModels.LoadPretrained(string, TaskType, ModelLoadOptions, Func{ModelConfig, ModelConfig}?)"/>
/// as <see cref="Activity"/> spans of the <see cref="SourceName"/> source, for profiling a load: listen with an
/// <see cref="ActivityListener"/> (or any OpenTelemetry exporter). Without a listener they cost one check each.
/// </summary>
/// <remarks>
/// Spans: <c>config</c> (config.json), <c>headers</c> (every safetensors header and the shard index, checked against
/// the config), <c>build</c> (the module tree), <c>plan</c> (names and shapes matched), then per weight
/// <c>read</c> (its tensor from the file, converted when the dtype or device differs) and <c>assign</c> (put in its
/// module), within <c>read</c> <c>populate</c> (its pages brought into memory, see
/// <see cref="ModelLoadOptions.PopulatePages"/>), and <c>release</c> (the meta tensors dropped).
/// </remarks>
public static class LoadTrace
{
    /// <summary>The <see cref="ActivitySource"/> name the loading spans are published under.</summary>
    public const string SourceName = "Peft.Loading";

    private static readonly ActivitySource Source = new(SourceName);

    /// <summary>Starts the span <paramref name="name"/>; null (nothing to stop) when nobody listens.</summary>
    /// <remarks>
    /// The span is not made <see cref="Activity.Current"/>: a load that throws leaves its last span unstopped, and an
    /// ambient one would then parent whatever the caller's thread traces next. Spans are flat, children of the caller's.
    /// </remarks>
    internal static Activity? Phase(string name)
    {
        var caller = Activity.Current;
        var span = Source.StartActivity(name);
        if (span is not null) Activity.Current = caller;
        return span;
    }
}
