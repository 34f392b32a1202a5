using System.Diagnostics;
using System.Threading.Channels;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using TorchSharp;

namespace Peft.Serving.Scheduling;

/// <summary>How the scheduler batches and how much it queues.</summary>
public sealed record SchedulerOptions
{
    /// <summary>Rows in one decoding batch at most (requests of any adapters mixed).</summary>
    public int MaxBatchSize { get; init; } = 8;

    /// <summary>Requests waiting at most; one more is refused with <see cref="QueueFullException"/>.</summary>
    public int MaxQueueLength { get; init; } = 64;
}

/// <summary>
/// Runs generation requests for many adapters on one model: waiting requests, whatever their adapters, are
/// taken together (up to <see cref="SchedulerOptions.MaxBatchSize"/>) into one batch routed per row
/// (<see cref="PeftModel.Generate(TorchSharp.torch.Tensor, TorchSharp.torch.Tensor?, IReadOnlyList{string}, IReadOnlyList{GenerationOptions}?, IGenerationObserver?)"/>),
/// so each adapter's rows pass its weights once per step. Tokens stream to each request as they are decoded;
/// a cancelled request's row stops at the next step; a full queue is refused at once.
/// </summary>
/// <remarks>
/// Batches run one after another on one thread (the model's CPU threads are the parallelism). A request that
/// arrives while a batch decodes waits for the next batch: rows do not join a batch between its decoding steps
/// (that needs per-row KV caches of different lengths, which the model's cache does not have yet).
/// </remarks>
public sealed class GenerationScheduler : IAsyncDisposable
{
    private readonly AdapterResidency _residency;
    private readonly SchedulerOptions _options;
    private readonly ServingMetrics _metrics;
    private readonly ILogger _logger;
    private readonly Channel<GenerationJob> _queue;
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _loop;
    private readonly long _padId;

    /// <summary>Starts the batching loop.</summary>
    public GenerationScheduler(AdapterResidency residency, SchedulerOptions options, ServingMetrics? metrics = null, ILogger? logger = null)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(options.MaxBatchSize, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(options.MaxQueueLength, 1);
        _residency = residency;
        _options = options;
        _metrics = metrics ?? new ServingMetrics();
        _logger = logger ?? NullLogger.Instance;
        _queue = Channel.CreateBounded<GenerationJob>(new BoundedChannelOptions(options.MaxQueueLength) { SingleReader = true, FullMode = BoundedChannelFullMode.Wait });
        var config = residency.Model.Model.Config;
        _padId = config.PadTokenId ?? (config.EosTokenIds is { Count: > 0 } eos ? eos[0] : 0);
        _loop = Task.Factory.StartNew(RunAsync, CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default).Unwrap();
    }

    /// <summary>The adapters and their residency.</summary>
    public AdapterResidency Residency => _residency;

    /// <summary>
    /// Queues <paramref name="request"/> after pinning its adapter (loading it if needed).
    /// </summary>
    /// <exception cref="KeyNotFoundException">Unknown adapter.</exception>
    /// <exception cref="AdapterCapacityException">No room to load the adapter now.</exception>
    /// <exception cref="QueueFullException">The queue is full.</exception>
    public async Task<GenerationJob> SubmitAsync(GenerationRequest request, CancellationToken cancellationToken = default)
    {
        if (request.PromptIds.Count == 0) throw new ArgumentException("The prompt has no tokens.", nameof(request));
        request.Options.Validate();
        var lease = await _residency.AcquireAsync([request.Adapter], cancellationToken).ConfigureAwait(false);
        var job = new GenerationJob(request, lease, cancellationToken);
        if (!_queue.Writer.TryWrite(job))
        {
            lease.Dispose();
            _metrics.Request(request.Adapter, "queue_full");
            throw new QueueFullException($"{_options.MaxQueueLength} requests are already waiting.");
        }
        return job;
    }

    private async Task RunAsync()
    {
        var reader = _queue.Reader;
        try
        {
            while (await reader.WaitToReadAsync(_stop.Token).ConfigureAwait(false))
            {
                var jobs = new List<GenerationJob>();
                while (jobs.Count < _options.MaxBatchSize && reader.TryRead(out var job))
                {
                    if (job.Cancellation.IsCancellationRequested)
                    {
                        job.Fail(new OperationCanceledException(job.Cancellation));
                        _metrics.Request(job.Request.Adapter, "cancelled");
                    }
                    else
                    {
                        jobs.Add(job);
                    }
                }
                if (jobs.Count > 0) RunBatch(jobs);
            }
        }
        catch (OperationCanceledException) when (_stop.IsCancellationRequested)
        {
        }
        while (reader.TryRead(out var left)) left.Fail(new OperationCanceledException("The server is stopping."));
    }

    private void RunBatch(List<GenerationJob> jobs)
    {
        _metrics.Batch(jobs.Count, jobs.Select(j => j.QueueTime));
        var started = Stopwatch.GetTimestamp();
        try
        {
            using var scope = torch.NewDisposeScope();
            using var noGrad = torch.no_grad();
            var width = jobs.Max(j => j.Request.PromptIds.Count);
            var ids = new long[jobs.Count * width];
            var mask = new long[jobs.Count * width];
            for (int row = 0; row < jobs.Count; row++)
            {
                // Left padding: every row's last prompt token sits in the last column, where decoding continues.
                var prompt = jobs[row].Request.PromptIds;
                var offset = row * width + width - prompt.Count;
                Array.Fill(ids, _padId, row * width, width - prompt.Count);
                for (int i = 0; i < prompt.Count; i++) (ids[offset + i], mask[offset + i]) = (prompt[i], 1);
            }
            var result = _residency.Model.Generate(
                torch.tensor(ids, [jobs.Count, width]),
                torch.tensor(mask, [jobs.Count, width]),
                [.. jobs.Select(j => j.Request.Adapter)],
                [.. jobs.Select(j => j.Request.Options)],
                new Streamer(jobs));
            long generated = 0;
            for (int row = 0; row < jobs.Count; row++)
            {
                var reason = result.FinishReasons[row];
                generated += result.Tokens[row].Length;
                if (reason == FinishReason.Cancelled)
                {
                    jobs[row].Fail(new OperationCanceledException(jobs[row].Cancellation));
                    _metrics.Request(jobs[row].Request.Adapter, "cancelled");
                    continue;
                }
                jobs[row].Complete(new GenerationOutcome(reason, jobs[row].Request.PromptIds.Count, result.Tokens[row]));
                _metrics.Request(jobs[row].Request.Adapter, "ok");
            }
            _metrics.Generated(generated, Stopwatch.GetElapsedTime(started));
            _logger.LogDebug("Batch of {Rows} rows ({Adapters}) generated {Tokens} tokens in {Elapsed} ms.",
                jobs.Count, string.Join(",", jobs.Select(j => j.Request.Adapter).Distinct()), generated, Stopwatch.GetElapsedTime(started).TotalMilliseconds);
        }
        catch (Exception e)
        {
            _logger.LogError(e, "A batch of {Rows} rows failed.", jobs.Count);
            foreach (var job in jobs)
            {
                job.Fail(e);
                _metrics.Request(job.Request.Adapter, "error");
            }
        }
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        _queue.Writer.TryComplete();
        await _stop.CancelAsync().ConfigureAwait(false);
        await _loop.ConfigureAwait(false);
        _stop.Dispose();
    }

    /// <summary>Hands each step's tokens to the rows' requests and stops rows whose requests were cancelled.</summary>
    private sealed class Streamer(List<GenerationJob> jobs) : IGenerationObserver
    {
        public void OnStep(int step, IReadOnlyList<long> tokens, IReadOnlyList<bool> finishedBefore)
        {
            for (int row = 0; row < jobs.Count; row++)
            {
                if (!finishedBefore[row]) jobs[row].Emit(tokens[row]);
            }
        }

        public bool ShouldStop(int row) => jobs[row].Cancellation.IsCancellationRequested;
    }
}
