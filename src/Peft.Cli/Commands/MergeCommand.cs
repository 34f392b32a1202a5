using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
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

        var loadOptions = QuantizeOptionChecks.LoadOptions(settings);
        var peft = models.FromPretrained(models.LoadPretrained(modelDirectory, task, loadOptions), adapter);
        // A quantized base merges into its dequantized weights (the adapter was trained against those), written in float32.
        // A safe merge: an adapter with NaN or infinity is refused by name instead of written into a model that outputs NaN.
        var merged = loadOptions.Quantization is null ? peft.MergeAndUnload(safeMerge: true) : peft.MergeAndUnload(torch.ScalarType.Float32, safeMerge: true);
        PeftModels.SavePretrained(merged, output, modelDirectory);
        LogMerged(logger, adapter, output, merged.state_dict().Count);
        return Task.FromResult(0);
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Merged {Adapter} into {Output} ({Count} tensors)")]
    private static partial void LogMerged(ILogger logger, string adapter, string output, int count);
}
