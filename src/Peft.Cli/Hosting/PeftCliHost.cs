using Microsoft.Extensions.Configuration;
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
    /// <summary>A host for <paramref name="command"/> with <paramref name="settings"/> layered over appsettings.json.</summary>
    public static IHost Build(string command, IReadOnlyDictionary<string, string?> settings, IAnsiConsole? console = null)
    {
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings
        {
            ContentRootPath = AppContext.BaseDirectory,
            DisableDefaults = false,
        });
        builder.Configuration.AddJsonFile(Path.Combine(Directory.GetCurrentDirectory(), "appsettings.json"), optional: true);
        builder.Configuration.AddInMemoryCollection(settings);
        builder.Logging.ClearProviders();
        builder.Logging.AddSimpleConsole(o => { o.SingleLine = true; o.TimestampFormat = "HH:mm:ss "; });

        builder.Services.AddPeft(peft => peft.AddBuiltInMethods().AddBuiltInBackbones());
        builder.Services.AddSingleton(console ?? AnsiConsole.Console);
        builder.Services.AddSingleton<Training.Trainer>();

        builder.Services.AddOptions<FinetuneOptions>().BindConfiguration("Peft:Finetune");
        builder.Services.AddSingleton<IValidateOptions<FinetuneOptions>, FinetuneOptionsValidator>();
        builder.Services.AddOptions<EvaluateOptions>().BindConfiguration("Peft:Evaluate");
        builder.Services.AddOptions<GenerateOptions>().BindConfiguration("Peft:Generate");
        builder.Services.AddOptions<MergeOptions>().BindConfiguration("Peft:Merge");
        builder.Services.AddOptions<InspectOptions>().BindConfiguration("Peft:Inspect");

        builder.Services.AddKeyedSingleton<ICliCommand, FinetuneCommand>("finetune");
        builder.Services.AddKeyedSingleton<ICliCommand, EvaluateCommand>("evaluate");
        builder.Services.AddKeyedSingleton<ICliCommand, GenerateCommand>("generate");
        builder.Services.AddKeyedSingleton<ICliCommand, MergeCommand>("merge");
        builder.Services.AddKeyedSingleton<ICliCommand, InspectCommand>("inspect");
        return builder.Build();
    }
}
