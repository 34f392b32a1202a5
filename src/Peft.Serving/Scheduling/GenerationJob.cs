using System.Diagnostics;
using System.Threading.Channels;

namespace Peft.Serving.Scheduling;

/// <summary>What to generate: the adapter (or <see cref="PeftModel.BaseModelName"/>), the prompt's ids and the decoding options.</summary>
/// <param name="Adapter">The adapter's name.</param>
/// <param name="PromptIds">The prompt, already tokenized (at least one id).</param>
/// <param name="Options">Sampling, stop ids and strings, token limit.</param>
public sealed record GenerationRequest(string Adapter, IReadOnlyList<int> PromptIds, GenerationOptions Options);

/// <summary>How a request ended.</summary>
/// <param name="FinishReason">Why generation stopped.</param>
/// <param name="PromptTokens">The prompt's length in tokens.</param>
/// <param name="Tokens">The new tokens (the end-of-sequence or stop id that ended them included).</param>
public sealed record GenerationOutcome(FinishReason FinishReason, int PromptTokens, IReadOnlyList<long> Tokens);

/// <summary>
/// A request inside the <see cref="GenerationScheduler"/>: its tokens arrive on <see cref="Tokens"/> as they are
/// decoded (streaming), and <see cref="Completion"/> ends with the outcome. Cancelling the token given at
/// submission (a client that went away) stops its row at the next decoding step.
/// </summary>
public sealed class GenerationJob
{
    private readonly Channel<long> _tokens = Channel.CreateUnbounded<long>(new UnboundedChannelOptions { SingleWriter = true });
    private readonly TaskCompletionSource<GenerationOutcome> _completion = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly IDisposable _lease;
    private readonly long _queuedAt = Stopwatch.GetTimestamp();

    internal GenerationJob(GenerationRequest request, IDisposable lease, CancellationToken cancellation)
    {
        Request = request;
        _lease = lease;
        Cancellation = cancellation;
    }

    /// <summary>What was asked.</summary>
    public GenerationRequest Request { get; }

    /// <summary>The request's cancellation (the HTTP request's aborted token).</summary>
    public CancellationToken Cancellation { get; }

    /// <summary>The new tokens, one by one as decoding goes; completed when the request ends.</summary>
    public ChannelReader<long> Tokens => _tokens.Reader;

    /// <summary>The outcome (faulted when the batch failed, cancelled when the request was cancelled before it ran).</summary>
    public Task<GenerationOutcome> Completion => _completion.Task;

    internal TimeSpan QueueTime => Stopwatch.GetElapsedTime(_queuedAt);

    internal void Emit(long token) => _tokens.Writer.TryWrite(token);

    internal void Complete(GenerationOutcome outcome)
    {
        _lease.Dispose();
        _tokens.Writer.TryComplete();
        _completion.TrySetResult(outcome);
    }

    internal void Fail(Exception error)
    {
        _lease.Dispose();
        _tokens.Writer.TryComplete(error);
        if (error is OperationCanceledException) _completion.TrySetCanceled(Cancellation);
        else _completion.TrySetException(error);
    }
}

/// <summary>The scheduler's queue is full: the server answers 429 and the client retries later.</summary>
/// <param name="message">What is full.</param>
public sealed class QueueFullException(string message) : Exception(message);
