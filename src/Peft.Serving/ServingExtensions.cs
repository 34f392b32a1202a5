using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Peft.Modeling;
using Peft.Serving.Http;

namespace Peft.Serving;

/// <summary>Serving for apps that use <c>AddPeft()</c>: the served model as a singleton, started and stopped with the host.</summary>
public static class ServingExtensions
{
    /// <summary>
    /// Registers a <see cref="ServedModel"/> made from <paramref name="options"/> (loaded when the host starts, so a
    /// wrong option fails the start), its <see cref="TextGeneration"/>, and a <see cref="Microsoft.Extensions.AI.IChatClient"/>
    /// over its first adapter. Map the HTTP API with <see cref="OpenAiEndpoints.MapPeftOpenAi"/>.
    /// </summary>
    public static IPeftBuilder AddServing(this IPeftBuilder builder, PeftServerOptions options)
    {
        var services = builder.Services;
        services.TryAddSingleton(options);
        services.TryAddSingleton(sp => ServedModel.Load(sp.GetRequiredService<PeftServerOptions>(), sp.GetRequiredService<PeftModels>(), sp.GetService<ILoggerFactory>()));
        services.TryAddSingleton(sp => sp.GetRequiredService<ServedModel>().Text);
        services.TryAddSingleton<Microsoft.Extensions.AI.IChatClient>(sp =>
        {
            var served = sp.GetRequiredService<ServedModel>();
            return new PeftChatClient(served.Text, served.Residency.Model.ActiveAdapterName);
        });
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IHostedService, ServingHostedService>());
        return builder;
    }

    /// <summary>A web app serving <paramref name="options"/> on <paramref name="urls"/> (e.g. <c>http://127.0.0.1:8000</c>).</summary>
    public static WebApplication CreateServer(PeftServerOptions options, string urls, Action<ILoggingBuilder>? logging = null)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls(urls);
        builder.WebHost.ConfigureKestrel(k => k.Limits.MaxRequestBodySize = options.MaxRequestBodyBytes);
        if (logging is not null) logging(builder.Logging);
        // Kestrel's per-request lines drown the server's own; its warnings and errors stay.
        builder.Logging.AddFilter("Microsoft.AspNetCore", LogLevel.Warning);
        builder.Services.AddPeft(peft => peft.AddBuiltInMethods().AddBuiltInBackbones().AddServing(options));
        var app = builder.Build();
        app.MapPeftOpenAi();
        return app;
    }

    /// <summary>Loads the model when the host starts and drains the scheduler when it stops.</summary>
    private sealed class ServingHostedService(IServiceProvider services, ILogger<ServingHostedService> logger) : IHostedService
    {
        public Task StartAsync(CancellationToken cancellationToken)
        {
            var served = services.GetRequiredService<ServedModel>();
            logger.LogInformation("Serving {Model} with adapters {Adapters} (at most {Max} resident).",
                served.BaseModelId, string.Join(", ", served.Residency.Known), served.Residency.MaxResident);
            served.Residency.Changed += (name, loaded) => logger.LogInformation("Adapter {Adapter} {Change}.", name, loaded ? "loaded" : "unloaded");
            return Task.CompletedTask;
        }

        public async Task StopAsync(CancellationToken cancellationToken) => await services.GetRequiredService<ServedModel>().DisposeAsync();
    }
}
