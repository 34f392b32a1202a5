using System.Text.Json.Nodes;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Peft.Checkpoints;
using Peft.Cli.Hosting;
using Peft.PromptLearning;
using TorchSharp;

namespace Peft.Cli.Commands;

/// <summary><c>peft merge</c>: folds an adapter into the base weights and writes a full model directory.</summary>
public sealed partial class MergeCommand(IOptions<MergeOptions> options, PeftModels models, ILogger<MergeCommand> logger) : ICliCommand
{
    /// <inheritdoc />
    public Task<int> RunAsync(CancellationToken cancellationToken)
    {
        var settings = options.Value;
        var modelDirectory = CommandChecks.ExistingDirectory(settings.Model, "--model");
        var adapter = CommandChecks.ExistingDirectory(settings.Adapter, "--adapter");
        var output = settings.Output ?? throw new CommandLineException("--output <directory> is required.");
        var config = models.ReadAdapterConfig(adapter);
        if (config is PromptLearningConfig)
        {
            // Virtual tokens and prefixes are inputs, not weight updates: there is nothing to fold in.
            throw new CommandLineException($"--adapter: {adapter} is a {config.PeftType} adapter; only adapters that change weights (LoRA, IA3) can be merged. Load it with the base model instead.");
        }
        var task = settings.Task is { } name ? new TaskType(name) : config.TaskType ?? throw new CommandLineException("--task: the adapter has no task_type; pass --task.");

        var model = models.LoadPretrained(modelDirectory, task);
        var wasTied = model.TiedWeights.Count > 0;
        var merged = models.FromPretrained(model, adapter).MergeAndUnload();

        Directory.CreateDirectory(output);
        var weights = merged.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.detach().contiguous());
        ModelWeights.Save(output, weights);

        var configJson = JsonNode.Parse(File.ReadAllText(Path.Combine(modelDirectory, "config.json")))!.AsObject();
        if (wasTied && merged.TiedWeights.Count == 0)
        {
            // Merging into a tied embedding gave the head its own copy of the base weight.
            configJson["tie_word_embeddings"] = false;
        }
        File.WriteAllText(Path.Combine(output, "config.json"), configJson.ToJsonString(PeftJson.Options));
        foreach (var extra in new[] { "vocab.txt", "vocab.json", "merges.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "generation_config.json" })
        {
            var source = Path.Combine(modelDirectory, extra);
            if (File.Exists(source)) File.Copy(source, Path.Combine(output, extra), overwrite: true);
        }
        LogMerged(logger, adapter, output, weights.Count);
        return Task.FromResult(0);
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Merged {Adapter} into {Output} ({Count} tensors)")]
    private static partial void LogMerged(ILogger logger, string adapter, string output, int count);
}
