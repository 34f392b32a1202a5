using Microsoft.Extensions.Options;
using Peft.Cli.Hosting;
using Spectre.Console;
using TorchSharp;

namespace Peft.Cli.Commands;

/// <summary><c>peft generate</c>: greedy generation with a causal LM and an optional adapter, from token ids.</summary>
public sealed class GenerateCommand(IOptions<GenerateOptions> options, PeftModels models, IAnsiConsole console) : ICliCommand
{
    /// <inheritdoc />
    public Task<int> RunAsync(CancellationToken cancellationToken)
    {
        var settings = options.Value;
        var modelDirectory = settings.Model ?? throw new CommandLineException("peft generate needs --model <directory>.");
        var prompt = ParseIds(settings.Prompt ?? throw new CommandLineException("peft generate needs --prompt \"id id id\"."));
        if (settings.MaxNewTokens <= 0) throw new CommandLineException($"--max-new-tokens must be positive, got {settings.MaxNewTokens}.");

        var model = models.LoadPretrained(modelDirectory, TaskType.CausalLM);
        var ids = torch.tensor(prompt, [1, prompt.Length]);
        var generated = settings.Adapter is { } adapter
            ? models.FromPretrained(model, adapter).Generate(ids, maxNewTokens: settings.MaxNewTokens)
            : Generation.Greedy(model, model.Config, ids, null, settings.MaxNewTokens);
        console.WriteLine(string.Join(' ', generated[0].data<long>().ToArray()));
        return Task.FromResult(0);
    }

    private static long[] ParseIds(string text)
    {
        var parts = text.Split([',', ' '], StringSplitOptions.RemoveEmptyEntries);
        var ids = new long[parts.Length];
        for (int i = 0; i < parts.Length; i++)
        {
            if (!long.TryParse(parts[i], out ids[i]) || ids[i] < 0)
            {
                throw new CommandLineException($"--prompt: '{parts[i]}' is not a token id; give non-negative integers separated by spaces or commas.");
            }
        }
        if (ids.Length == 0) throw new CommandLineException("--prompt is empty.");
        return ids;
    }
}
