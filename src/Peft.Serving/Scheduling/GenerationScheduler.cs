using System.Diagnostics;
using System.Threading.Channels;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Peft.Serving;
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
/// Runs generation requests for many adapters on one model, routed per row so that each adapter's rows pass its
/// weights once per step. Decoder-only models are batched continuously (<see cref="ContinuousBatch"/>): waiting
/// requests, whatever their adapters, join the running batch between two decoding steps (up to
/// <see cref="SchedulerOptions.MaxBatchSize"/> rows) and leave it as they finish. Encoder-decoder models run
/// batch after batch (<see cref="PeftModel.Generate(TorchSharp.torch.Tensor, TorchSharp.torch.Tensor?, IReadOnlyList{string}, IReadOnlyList{GenerationOptions}?, IGenerationObserver?)"/>).
/// Tokens stream to each request as they are decoded; a cancelled request's row stops at the next step; a full
/// queue is refused at once.
/// </summary>
/// <remarks>One loop thread runs the model (the model's CPU threads are the parallelism).</remarks>
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
            if (_residency.Model.Model.IsEncoderDecoder)
            {
                while (await reader.WaitToReadAsync(_stop.Token).ConfigureAwait(false))
                {
                    var jobs = TakeWaiting(_options.MaxBatchSize);
                    if (jobs.Count > 0) RunBatch(jobs);
                }
            }
            else
            {
                await RunContinuouslyAsync().ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException) when (_stop.IsCancellationRequested)
        {
        }
        while (reader.TryRead(out var left)) left.Fail(new OperationCanceledException("The server is stopping."));
    }

    /// <summary>Up to <paramref name="count"/> waiting requests; those cancelled while they waited end here.</summary>
    private List<GenerationJob> TakeWaiting(int count)
    {
        var jobs = new List<GenerationJob>();
        while (jobs.Count < count && _queue.Reader.TryRead(out var job))
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
        return jobs;
    }

    /// <summary>
    /// The continuous loop: between two steps, rows of cancelled requests leave and waiting requests join (one
    /// prefill for all of them); otherwise every row decodes one token. A failed step fails the rows in the batch.
    /// </summary>
    private async Task RunContinuouslyAsync()
    {
        var batch = new ContinuousBatch(_residency.Model);
        var running = new Dictionary<int, (GenerationJob Job, List<long> Tokens)>();
        try
        {
            while (!_stop.IsCancellationRequested)
            {
                if (running.Count == 0 && !await _queue.Reader.WaitToReadAsync(_stop.Token).ConfigureAwait(false)) break;
                foreach (var (row, entry) in running.Where(r => r.Value.Job.Cancellation.IsCancellationRequested).ToList())
                {
                    batch.Cancel(row);
                    running.Remove(row);
                    entry.Job.Fail(new OperationCanceledException(entry.Job.Cancellation));
                    _metrics.Request(entry.Job.Request.Adapter, "cancelled");
                }
                var joining = TakeWaiting(_options.MaxBatchSize - running.Count);
                if (joining.Count == 0 && running.Count == 0) continue;
                var started = Stopwatch.GetTimestamp();
                IReadOnlyList<RowToken> tokens;
                if (joining.Count > 0)
                {
                    // A prefill that fails (an adapter removed meanwhile) leaves the running rows as they were.
                    try
                    {
                        _metrics.Batch(running.Count + joining.Count, joining.Select(j => j.QueueTime));
                        tokens = batch.Join([.. joining.Select(j => new ContinuousRow(j.Request.PromptIds, j.Request.Adapter, j.Request.Options))]);
                    }
                    catch (Exception e)
                    {
                        Fail(joining, e, "A prefill of {Rows} joining rows failed.");
                        continue;
                    }
                    for (int i = 0; i < joining.Count; i++) running[tokens[i].Row] = (joining[i], []);
                }
                else
                {
                    try
                    {
                        tokens = batch.Step();
                    }
                    catch (Exception e)
                    {
                        Fail([.. running.Values.Select(r => r.Job)], e, "A decoding step of {Rows} rows failed.");
                        running.Clear();
                        batch.Dispose();
                        batch = new ContinuousBatch(_residency.Model);
                        continue;
                    }
                }
                foreach (var token in tokens) Deliver(running, token);
                _metrics.Generated(tokens.Count, Stopwatch.GetElapsedTime(started));
            }
        }
        finally
        {
            foreach (var (job, _) in running.Values) job.Fail(new OperationCanceledException("The server is stopping."));
            batch.Dispose();
        }
    }

    private void Fail(IReadOnlyList<GenerationJob> jobs, Exception error, string message)
    {
        _logger.LogError(error, message, jobs.Count);
        foreach (var job in jobs)
        {
            job.Fail(error);
            _metrics.Request(job.Request.Adapter, "error");
        }
    }

    private void Deliver(Dictionary<int, (GenerationJob Job, List<long> Tokens)> running, RowToken token)
    {
        var (job, tokens) = running[token.Row];
        if (token.Token is { } id)
        {
            tokens.Add(id);
            job.Emit(id);
        }
        if (token.Finished is not { } reason) return;
        running.Remove(token.Row);
        job.Complete(new GenerationOutcome(reason, job.Request.PromptIds.Count, tokens));
        _metrics.Request(job.Request.Adapter, "ok");
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
