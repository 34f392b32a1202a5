using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Peft.Cli.Hosting;
using Peft.Serving;
using Peft.Serving.Chat;
using Peft.Serving.Scheduling;
using Spectre.Console;

namespace Peft.Cli.Commands;

/// <summary>
/// <c>peft serve</c>: an OpenAI-compatible server for one base model and many adapters (docs/SERVING.md). With no
/// options it serves the default job's classifier: all-MiniLM-L6-v2 with peft-output/lora-adapter, on /v1/classify.
/// </summary>
public sealed class ServeCommand(IOptions<ServeOptions> options, IAnsiConsole console, ILoggerProvider logs) : ICliCommand
{
    /// <inheritdoc />
    public async Task<int> RunAsync(CancellationToken cancellationToken)
    {
        var settings = options.Value;
        var useDefaultAdapter = settings.Adapter is not { Length: > 0 } && settings.AdaptersDir is null;
        if (useDefaultAdapter && !Directory.Exists(DefaultAdapter))
        {
            throw new CommandLineException($"no adapter to serve: {DefaultAdapter} (what the default job writes) is not here. Run `peft finetune` first, or pass --adapter name=DIR (and --model DIR).");
        }
        var modelDirectory = settings.Model is { Length: > 0 } given ? CommandChecks.ExistingDirectory(given, "--model") : DefaultModel.Ensure(console);
        var adapters = (useDefaultAdapter ? [$"default={DefaultAdapter}"] : settings.Adapter ?? []).Select(ParseAdapter).ToList();
        var server = new PeftServerOptions
        {
            ModelDirectory = modelDirectory,
            FirstAdapter = adapters.Count > 0 ? adapters[0] : null,
            Adapters = adapters.Skip(1).ToDictionary(a => a.Name, a => a.Directory),
            AdaptersDirectory = settings.AdaptersDir is { Length: > 0 } root ? CommandChecks.ExistingDirectory(root, "--adapters-dir") : null,
            MaxResidentAdapters = Positive(settings.MaxResidentAdapters, "--max-resident-adapters"),
            Scheduler = new SchedulerOptions { MaxBatchSize = Positive(settings.MaxBatchSize, "--max-batch-size"), MaxQueueLength = Positive(settings.MaxQueue, "--max-queue") },
            Limits = new ServingLimits
            {
                MaxPromptTokens = Positive(settings.MaxPromptTokens, "--max-prompt-tokens"),
                MaxNewTokens = Positive(settings.MaxNewTokens, "--max-new-tokens"),
                DefaultMaxNewTokens = Math.Min(64, settings.MaxNewTokens),
            },
            ApiKeys = (settings.ApiKey ?? []).Select(ParseKey).ToDictionary(k => k.Key, k => k.Adapters),
            ChatTemplate = settings.ChatTemplate is { Length: > 0 } family ? ParseFamily(family) : null,
        };
        WebApplicationServer app;
        try
        {
            app = new WebApplicationServer(ServingExtensions.CreateServer(server, settings.Urls, logging => logging.ClearProviders().AddProvider(logs)));
        }
        catch (ArgumentException e)
        {
            throw new CommandLineException(e.Message);
        }
        await app.RunAsync(cancellationToken);
        return 0;
    }

    private const string DefaultAdapter = "peft-output/lora-adapter";

    private static (string Name, string Directory) ParseAdapter(string value)
    {
        var at = value.IndexOf('=');
        if (at <= 0 || at == value.Length - 1) throw new CommandLineException($"--adapter: '{value}' is not name=DIR.");
        return (value[..at], CommandChecks.ExistingDirectory(value[(at + 1)..], "--adapter"));
    }

    private static (string Key, IReadOnlyList<string> Adapters) ParseKey(string value)
    {
        var at = value.IndexOf('=');
        return at < 0 ? (value, ["*"]) : (value[..at], value[(at + 1)..].Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));
    }

    private static ChatTemplateFamily ParseFamily(string value) => value.ToLowerInvariant() switch
    {
        "chatml" => ChatTemplateFamily.ChatMl,
        "llama3" => ChatTemplateFamily.Llama3,
        "llama2" or "mistral" => ChatTemplateFamily.Llama2,
        "zephyr" => ChatTemplateFamily.Zephyr,
        "gemma" => ChatTemplateFamily.Gemma,
        _ => throw new CommandLineException($"--chat-template: '{value}' is none of chatml, llama3, llama2, zephyr, gemma."),
    };

    private static int Positive(int value, string option) => value > 0 ? value : throw new CommandLineException($"{option} must be positive, got {value}.");

    /// <summary>Starts the web app (loading the model), runs it until Ctrl+C, and turns option errors into one-line errors.</summary>
    private sealed class WebApplicationServer(Microsoft.AspNetCore.Builder.WebApplication app)
    {
        public async Task RunAsync(CancellationToken cancellationToken)
        {
            try
            {
                await app.StartAsync(cancellationToken);
            }
            catch (ArgumentException e)
            {
                throw new CommandLineException(e.Message);
            }
            try
            {
                await Task.Delay(Timeout.Infinite, cancellationToken);
            }
            catch (OperationCanceledException)
            {
            }
            await app.StopAsync(CancellationToken.None);
            await app.DisposeAsync();
        }
    }
}
