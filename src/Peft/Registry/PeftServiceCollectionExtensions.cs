using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Logging;
using Peft.Plugins;

namespace Peft;

/// <summary>Registers Peft for .NET with a service collection.</summary>
public static class PeftServiceCollectionExtensions
{
    /// <summary>
    /// Adds the plugin registry, the model loader and the <see cref="Training.Trainer"/>. Safe to call more than once. Built-in plugins
    /// are added with <see cref="PeftBuilderExtensions.AddBuiltInMethods"/> and
    /// <see cref="PeftBuilderExtensions.AddBuiltInBackbones"/>; third-party ones with
    /// <see cref="PeftBuilderExtensions.AddMethod{T}"/> and <see cref="PeftBuilderExtensions.AddBackbone{T}"/>.
    /// </summary>
    public static IPeftBuilder AddPeft(this IServiceCollection services)
    {
        ArgumentNullException.ThrowIfNull(services);
        services.TryAddSingleton(provider =>
        {
            // The library's warnings (PeftLog) go to the host's logging once the host builds Peft.
            if (provider.GetService<ILoggerFactory>() is { } loggers) PeftLog.Logger = loggers.CreateLogger("Peft");
            return new PeftRegistry(provider.GetServices<IArchitecture>(), provider.GetServices<IPeftMethod>());
        });
        services.TryAddSingleton<PeftModels>();
        // Transient: a Trainer holds no state between runs, and its logger comes from the container when logging is added.
        services.TryAddTransient<Training.Trainer>();
        return new PeftBuilder(services);
    }

    /// <summary>Adds Peft and lets <paramref name="configure"/> choose the plugins.</summary>
    public static IServiceCollection AddPeft(this IServiceCollection services, Action<IPeftBuilder> configure)
    {
        ArgumentNullException.ThrowIfNull(configure);
        configure(services.AddPeft());
        return services;
    }

    private sealed class PeftBuilder(IServiceCollection services) : IPeftBuilder
    {
        public IServiceCollection Services { get; } = services;
    }
}

/// <summary>Configures the plugins of Peft for .NET; returned by <c>AddPeft()</c>.</summary>
public interface IPeftBuilder
{
    /// <summary>The services being configured.</summary>
    IServiceCollection Services { get; }
}

/// <summary>Adds plugins to an <see cref="IPeftBuilder"/>.</summary>
public static class PeftBuilderExtensions
{
    /// <summary>Registers method plugin <typeparamref name="T"/>.</summary>
    public static IPeftBuilder AddMethod<T>(this IPeftBuilder builder) where T : class, IPeftMethod
    {
        ArgumentNullException.ThrowIfNull(builder);
        builder.Services.TryAddEnumerable(ServiceDescriptor.Singleton<IPeftMethod, T>());
        return builder;
    }

    /// <summary>Registers architecture plugin <typeparamref name="T"/>.</summary>
    public static IPeftBuilder AddBackbone<T>(this IPeftBuilder builder) where T : class, IArchitecture
    {
        ArgumentNullException.ThrowIfNull(builder);
        builder.Services.TryAddEnumerable(ServiceDescriptor.Singleton<IArchitecture, T>());
        return builder;
    }

    /// <summary>Registers every built-in method.</summary>
    public static IPeftBuilder AddBuiltInMethods(this IPeftBuilder builder)
    {
        ArgumentNullException.ThrowIfNull(builder);
        foreach (var method in BuiltIns.Methods())
        {
            builder.Services.TryAddEnumerable(ServiceDescriptor.Singleton(typeof(IPeftMethod), method.GetType()));
        }
        return builder;
    }

    /// <summary>Registers every built-in architecture.</summary>
    public static IPeftBuilder AddBuiltInBackbones(this IPeftBuilder builder)
    {
        ArgumentNullException.ThrowIfNull(builder);
        foreach (var architecture in BuiltIns.Architectures())
        {
            builder.Services.TryAddEnumerable(ServiceDescriptor.Singleton(typeof(IArchitecture), architecture.GetType()));
        }
        return builder;
    }
}
