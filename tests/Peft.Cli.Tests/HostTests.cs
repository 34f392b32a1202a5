using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using Peft.Cli.Commands;
using Peft.Cli.Hosting;
using Spectre.Console.Testing;

namespace Peft.Cli.Tests;

public class HostTests
{
    [Fact]
    public void AppsettingsAndArgumentsReachTheOptions()
    {
        var (command, settings) = CommandLine.Parse(["finetune", "--rank", "4"]);
        using var host = PeftCliHost.Build(command, settings, new TestConsole());
        var options = host.Services.GetRequiredService<IOptions<FinetuneOptions>>().Value;
        Assert.Equal(4, options.Rank);
    }

    [Fact]
    public void InvalidOptionsFailValidationNamingTheOption()
    {
        var (command, settings) = CommandLine.Parse(["finetune", "--epochs", "-1"]);
        using var host = PeftCliHost.Build(command, settings, new TestConsole());
        var error = Assert.Throws<OptionsValidationException>(() => host.Services.GetRequiredService<IOptions<FinetuneOptions>>().Value);
        Assert.Contains(error.Failures, f => f.Contains("--epochs"));
    }

    [Fact]
    public void AdapterDirectoryWithoutConfigIsReported()
    {
        var empty = Directory.CreateTempSubdirectory("peft-cli-model-");
        try
        {
            var (command, settings) = CommandLine.Parse(["inspect", "--adapter", empty.FullName]);
            using var host = PeftCliHost.Build(command, settings, new TestConsole());
            var inspect = host.Services.GetRequiredKeyedService<ICliCommand>("inspect");
            var error = Assert.Throws<PeftConfigException>(() => inspect.RunAsync(CancellationToken.None).GetAwaiter().GetResult());
            Assert.Contains("adapter_config.json", error.Message);

            var (mergeCommand, mergeSettings) = CommandLine.Parse(["merge", "--model", empty.FullName, "--adapter", empty.FullName, "--output", empty.FullName]);
            using var mergeHost = PeftCliHost.Build(mergeCommand, mergeSettings, new TestConsole());
            var merge = mergeHost.Services.GetRequiredKeyedService<ICliCommand>("merge");
            Assert.Throws<PeftConfigException>(() => merge.RunAsync(CancellationToken.None).GetAwaiter().GetResult());
        }
        finally
        {
            empty.Delete(recursive: true);
        }
    }
}
