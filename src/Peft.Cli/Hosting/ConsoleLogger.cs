using Microsoft.Extensions.Logging;
using Spectre.Console;

namespace Peft.Cli.Hosting;

/// <summary>
/// Log lines through the same <see cref="IAnsiConsole"/> as the progress bar: Spectre.Console then
/// prints them above a live display instead of over it. One line each, "HH:mm:ss level message",
/// without category names or event ids.
/// </summary>
public sealed class ConsoleLoggerProvider(IAnsiConsole console) : ILoggerProvider
{
    private readonly Lock _gate = new();

    /// <inheritdoc />
    public ILogger CreateLogger(string categoryName) => new ConsoleLogger(console, _gate);

    /// <inheritdoc />
    public void Dispose()
    {
    }

    private sealed class ConsoleLogger(IAnsiConsole console, Lock gate) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => logLevel != LogLevel.None;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            if (!IsEnabled(logLevel)) return;
            var (label, style) = logLevel switch
            {
                LogLevel.Trace => ("trce", "grey"),
                LogLevel.Debug => ("dbug", "grey"),
                LogLevel.Information => ("info", "green"),
                LogLevel.Warning => ("warn", "yellow"),
                LogLevel.Error => ("fail", "red"),
                _ => ("crit", "red"),
            };
            var message = formatter(state, exception);
            if (exception is not null) message += $" ({exception.GetType().Name}: {exception.Message})";
            lock (gate)
            {
                console.MarkupLine($"[grey]{DateTime.Now:HH:mm:ss}[/] [{style}]{label}[/] {Markup.Escape(message)}");
            }
        }
    }
}
