using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Configuration.EnvironmentVariables;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Peft.Cli.Commands;
using Spectre.Console;

namespace Peft.Cli.Hosting;

/// <summary>Builds the Generic Host the commands run in: configuration, logging, Peft's plugins, the commands.</summary>
public static class PeftCliHost
{
    /// <summary>
    /// A host for <paramref name="command"/>. Configuration, later wins as in .NET's defaults:
    /// appsettings.json beside the tool, then appsettings.json in the working folder, then
    /// environment variables (<c>Peft__Finetune__Epochs</c>), then <paramref name="settings"/> (the command line).
    /// </summary>
    /// <param name="command">The command to run.</param>
    /// <param name="settings">The options given on the command line, as configuration keys.</param>
    /// <param name="console">Where output and log lines go; null: the process's console.</param>
    /// <param name="workingDirectory">Where a user's appsettings.json is looked for; null: the current directory.</param>
    public static IHost Build(string command, IReadOnlyDictionary<string, string?> settings, IAnsiConsole? console = null, string? workingDirectory = null)
    {
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings
        {
            ContentRootPath = AppContext.BaseDirectory,
            DisableDefaults = false,
        });
        // The working folder's appsettings.json goes before the environment variables, so that they override it.
        var sources = builder.Configuration.Sources;
        var environment = sources.ToList().FindIndex(s => s is EnvironmentVariablesConfigurationSource { Prefix: null or "" });
        var local = new ConfigurationBuilder()
            .AddJsonFile(Path.Combine(workingDirectory ?? Directory.GetCurrentDirectory(), "appsettings.json"), optional: true).Sources[0];
        if (environment >= 0) sources.Insert(environment, local);
        else sources.Add(local);
        builder.Configuration.AddInMemoryCollection(settings);

        var ansi = console ?? AnsiConsole.Console;
        builder.Logging.ClearProviders();
        builder.Logging.AddProvider(new ConsoleLoggerProvider(ansi));

        builder.Services.AddPeft(peft => peft.AddBuiltInMethods().AddBuiltInBackbones());
        builder.Services.AddSingleton(ansi);
        builder.Services.AddSingleton<Training.Trainer>();

        builder.Services.AddOptions<FinetuneOptions>().BindConfiguration(CommandCatalog.Get("finetune").Section);
        builder.Services.AddSingleton<IValidateOptions<FinetuneOptions>, FinetuneOptionsValidator>();
        builder.Services.AddOptions<EvaluateOptions>().BindConfiguration(CommandCatalog.Get("evaluate").Section);
        builder.Services.AddOptions<PredictOptions>().BindConfiguration(CommandCatalog.Get("predict").Section);
        builder.Services.AddOptions<GenerateOptions>().BindConfiguration(CommandCatalog.Get("generate").Section);
        builder.Services.AddOptions<MergeOptions>().BindConfiguration(CommandCatalog.Get("merge").Section);
        builder.Services.AddOptions<InspectOptions>().BindConfiguration(CommandCatalog.Get("inspect").Section);
        builder.Services.AddOptions<ServeOptions>().BindConfiguration(CommandCatalog.Get("serve").Section);

        builder.Services.AddKeyedSingleton<ICliCommand, FinetuneCommand>("finetune");
        builder.Services.AddKeyedSingleton<ICliCommand, EvaluateCommand>("evaluate");
        builder.Services.AddKeyedSingleton<ICliCommand, PredictCommand>("predict");
        builder.Services.AddKeyedSingleton<ICliCommand, GenerateCommand>("generate");
        builder.Services.AddKeyedSingleton<ICliCommand, MergeCommand>("merge");
        builder.Services.AddKeyedSingleton<ICliCommand, InspectCommand>("inspect");
        builder.Services.AddKeyedSingleton<ICliCommand, ServeCommand>("serve");
        return builder.Build();
    }
}
