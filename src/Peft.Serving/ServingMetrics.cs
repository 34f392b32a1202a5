using System.Diagnostics.Metrics;

namespace Peft.Serving;

/// <summary>
/// The serving counters, on the meter <c>Peft.Serving</c> (System.Diagnostics.Metrics, so OpenTelemetry or
/// <c>dotnet-counters</c> read them): requests, queue time, batch size, generated tokens, decoding speed,
/// resident adapters and their bytes.
/// </summary>
public sealed class ServingMetrics : IDisposable
{
    /// <summary>The meter's name.</summary>
    public const string MeterName = "Peft.Serving";

    private readonly Meter _meter;
    private readonly Counter<long> _requests;
    private readonly Histogram<double> _queueTime;
    private readonly Histogram<int> _batchSize;
    private readonly Counter<long> _tokens;
    private readonly Histogram<double> _tokensPerSecond;

    /// <summary>Creates the instruments, through <paramref name="meterFactory"/> when the host has one.</summary>
    public ServingMetrics(IMeterFactory? meterFactory = null)
    {
        _meter = meterFactory?.Create(MeterName) ?? new Meter(MeterName);
        _requests = _meter.CreateCounter<long>("peft.serving.requests", description: "Requests finished, by adapter and outcome.");
        _queueTime = _meter.CreateHistogram<double>("peft.serving.queue_time", "ms", "Time from submission to the start of the request's batch.");
        _batchSize = _meter.CreateHistogram<int>("peft.serving.batch_size", description: "Rows per decoding batch.");
        _tokens = _meter.CreateCounter<long>("peft.serving.generated_tokens", description: "Tokens generated.");
        _tokensPerSecond = _meter.CreateHistogram<double>("peft.serving.tokens_per_second", "{token}/s", "Tokens per second of each batch.");
    }

    /// <summary>Reports the residency's adapters and bytes as observable gauges.</summary>
    public void Observe(Peft.Serving.AdapterResidencyView residency)
    {
        _meter.CreateObservableGauge("peft.serving.resident_adapters", () => residency.Count(), description: "Adapters loaded.");
        _meter.CreateObservableGauge("peft.serving.resident_adapter_bytes", () => residency.Bytes(), "By", "Bytes of loaded adapter weights.");
    }

    internal void Request(string adapter, string outcome) =>
        _requests.Add(1, new KeyValuePair<string, object?>("adapter", adapter), new KeyValuePair<string, object?>("outcome", outcome));

    internal void Batch(int rows, IEnumerable<TimeSpan> queueTimes)
    {
        _batchSize.Record(rows);
        foreach (var wait in queueTimes) _queueTime.Record(wait.TotalMilliseconds);
    }

    internal void Generated(long tokens, TimeSpan elapsed)
    {
        _tokens.Add(tokens);
        if (elapsed > TimeSpan.Zero) _tokensPerSecond.Record(tokens / elapsed.TotalSeconds);
    }

    /// <inheritdoc />
    public void Dispose() => _meter.Dispose();
}

/// <summary>What the gauges read of the adapter residency.</summary>
/// <param name="Count">Adapters loaded now.</param>
/// <param name="Bytes">Their bytes now.</param>
public sealed record AdapterResidencyView(Func<int> Count, Func<long> Bytes);
