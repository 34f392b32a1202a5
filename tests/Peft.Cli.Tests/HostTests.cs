using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using Peft.Cli.Hosting;
using Spectre.Console.Testing;

namespace Peft.Cli.Tests;

// One collection with CliTests: the environment variable set here must not reach their inspect runs.
[Collection("cli")]
public class HostTests
{
    [Fact]
    public void ArgumentsReachTheOptions()
    {
        var parsed = CommandLine.Parse(["finetune", "--rank", "4", "--on-bad-line", "skip"]);
        using var host = PeftCliHost.Build(parsed.Command, parsed.Settings, new TestConsole());
        var options = host.Services.GetRequiredService<IOptions<FinetuneOptions>>().Value;
        Assert.Equal(4, options.Rank);
        Assert.Equal(Data.BadLinePolicy.Skip, options.OnBadLine);
    }

    [Fact]
    public void InvalidOptionsFailValidationNamingTheOption()
    {
        var parsed = CommandLine.Parse(["finetune", "--epochs", "-1"]);
        using var host = PeftCliHost.Build(parsed.Command, parsed.Settings, new TestConsole());
        var error = Assert.Throws<OptionsValidationException>(() => host.Services.GetRequiredService<IOptions<FinetuneOptions>>().Value);
        Assert.Contains(error.Failures, f => f.Contains("--epochs"));
    }

    [Fact]
    public void EnvironmentVariablesOverrideAppsettingsAndTheCommandLineOverridesBoth()
    {
        // .NET's order: appsettings.json < environment variables < command line.
        var folder = Directory.CreateTempSubdirectory("peft-settings-");
        const string variable = "Peft__Inspect__Task";
        try
        {
            File.WriteAllText(Path.Combine(folder.FullName, "appsettings.json"), """{ "Peft": { "Inspect": { "Task": "FROM_JSON", "Model": "json-model" } } }""");
            Environment.SetEnvironmentVariable(variable, "FROM_ENVIRONMENT");
            using (var host = PeftCliHost.Build("inspect", new Dictionary<string, string?>(), new TestConsole(), folder.FullName))
            {
                var options = host.Services.GetRequiredService<IOptions<InspectOptions>>().Value;
                Assert.Equal("FROM_ENVIRONMENT", options.Task);
                Assert.Equal("json-model", options.Model);
            }
            var parsed = CommandLine.Parse(["inspect", "--task", "FROM_COMMAND_LINE"]);
            using (var host = PeftCliHost.Build(parsed.Command, parsed.Settings, new TestConsole(), folder.FullName))
            {
                Assert.Equal("FROM_COMMAND_LINE", host.Services.GetRequiredService<IOptions<InspectOptions>>().Value.Task);
            }
        }
        finally
        {
            Environment.SetEnvironmentVariable(variable, null);
            folder.Delete(recursive: true);
        }
    }
}
