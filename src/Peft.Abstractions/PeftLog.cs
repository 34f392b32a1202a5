using Microsoft.Extensions.Logging;

namespace Peft;

/// <summary>
/// Where the library reports what the reference reports with <c>warnings.warn</c>: a config value
/// it corrected (fan_in_fan_out), a merged model unmerged before a disabled forward, an unknown
/// adapter_config.json key. Without a host the warnings go to standard error, as Python's do;
/// <c>AddPeft()</c> routes them to the host's logging; <see cref="Use"/> captures them for a scope.
/// </summary>
public static class PeftLog
{
    private static readonly AsyncLocal<Sink?> Scoped = new();
    private static Sink _global = new(new StandardErrorLogger());

    /// <summary>The logger warnings go to (the scoped one from <see cref="Use"/>, if any).</summary>
    public static ILogger Logger
    {
        get => (Scoped.Value ?? _global).Logger;
        set => _global = new Sink(value ?? throw new ArgumentNullException(nameof(value)));
    }

    /// <summary>Sends warnings raised on this async flow to <paramref name="logger"/> until the result is disposed.</summary>
    public static IDisposable Use(ILogger logger)
    {
        var previous = Scoped.Value;
        Scoped.Value = new Sink(logger);
        return new Restore(() => Scoped.Value = previous);
    }

    /// <summary>
    /// Logs <paramref name="message"/> as a warning, once per logger: like Python's default warnings
    /// filter, a message repeated for every layer of a model is shown the first time only.
    /// </summary>
    public static void Warn(string message)
    {
        var sink = Scoped.Value ?? _global;
        lock (sink.Seen)
        {
            if (!sink.Seen.Add(message)) return;
        }
        sink.Logger.LogWarning("{Message}", message);
    }

    private sealed record Sink(ILogger Logger)
    {
        public HashSet<string> Seen { get; } = new(StringComparer.Ordinal);
    }

    private sealed class Restore(Action restore) : IDisposable
    {
        public void Dispose() => restore();
    }

    /// <summary>Writes warnings to standard error, one line each, like Python's warnings module.</summary>
    private sealed class StandardErrorLogger : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => logLevel >= LogLevel.Warning;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            if (IsEnabled(logLevel)) Console.Error.WriteLine($"Peft {logLevel.ToString().ToLowerInvariant()}: {formatter(state, exception)}");
        }
    }
}
