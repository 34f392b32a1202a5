using System.Text.Json;
using Microsoft.Extensions.Options;
using Peft.Checkpoints;
using Peft.Modeling;
using Peft.Cli.Hosting;
using Spectre.Console;

namespace Peft.Cli.Commands;

/// <summary>
/// <c>peft inspect</c>: an adapter's config, tensors, sizes and (with a base model) the trainable-parameter line; or,
/// with <c>--model</c> alone, the base model: architecture, parameters, dtype, device, load time and peak memory.
/// </summary>
public sealed class InspectCommand(IOptions<InspectOptions> options, PeftModels models, IAnsiConsole console) : ICliCommand
{
    /// <inheritdoc />
    public Task<int> RunAsync(CancellationToken cancellationToken)
    {
        var settings = options.Value;
        if (settings.Adapter is null && settings.Model is { } baseOnly)
        {
            InspectBaseModel(settings, baseOnly);
            return Task.FromResult(0);
        }
        var adapter = settings.Adapter ?? throw new CommandLineException("--adapter <directory> (or --model <directory> alone, for a base model) is required.");
        if (!Directory.Exists(adapter)) throw new CommandLineException($"--adapter: directory '{adapter}' not found.");
        var config = models.ReadAdapterConfig(adapter);
        var weightsPath = Path.Combine(adapter, "adapter_model.safetensors");
        if (!File.Exists(weightsPath)) throw new CommandLineException($"--adapter: {weightsPath} not found.");
        var header = SafeTensors.ReadHeader(weightsPath);

        console.MarkupLineInterpolated($"[bold]{config.PeftType}[/] adapter for [bold]{config.TaskType?.Name ?? "(no task_type)"}[/] in {adapter}");
        // Plain lines, not a table: tensor names are long, and a table at 80 columns would break them.
        var rows = header.Tensors.OrderBy(t => t.Key, StringComparer.Ordinal)
            .Select(t => (t.Key, t.Value.DType, Shape: "[" + string.Join(", ", t.Value.Shape) + "]", Count: t.Value.Shape.Aggregate(1L, (a, b) => a * b)))
            .ToList();
        var nameWidth = rows.Count == 0 ? 0 : rows.Max(r => r.Key.Length);
        var shapeWidth = rows.Count == 0 ? 0 : rows.Max(r => r.Shape.Length);
        var countWidth = rows.Count == 0 ? 0 : rows.Max(r => $"{r.Count:N0}".Length);   // as wide as needed, so short names fit 80 columns
        long total = 0;
        foreach (var row in rows)
        {
            total += row.Count;
            console.WriteLine($"{row.Key.PadRight(nameWidth)}  {row.DType,-4}  {row.Shape.PadRight(shapeWidth)}  {$"{row.Count:N0}".PadLeft(countWidth)}");
        }
        console.WriteLine($"{header.Tensors.Count} tensors, {total:N0} values, {new FileInfo(weightsPath).Length:N0} bytes");

        using (var document = JsonDocument.Parse(File.ReadAllText(Path.Combine(adapter, "adapter_config.json"))))
        {
            var interesting = new[] { "r", "lora_alpha", "lora_dropout", "use_rslora", "target_modules", "modules_to_save", "num_virtual_tokens", "base_model_name_or_path" };
            foreach (var key in interesting)
            {
                if (document.RootElement.TryGetProperty(key, out var value) && value.ValueKind != JsonValueKind.Null)
                {
                    console.WriteLine($"{key}: {value.GetRawText()}");
                }
            }
        }

        if (settings.Model is { } modelDirectory)
        {
            CommandChecks.ExistingDirectory(modelDirectory, "--model");
            var task = CommandChecks.SupportedTask(models, modelDirectory,
                settings.Task is { } name ? new TaskType(name) : config.TaskType ?? throw new CommandLineException("--task: the adapter has no task_type; pass --task."));
            var loadOptions = QuantizeOptionChecks.LoadOptions(settings);
            var (model, loadSeconds, peak) = Load(settings, modelDirectory, task);
            var peft = models.FromPretrained(model, adapter, isTrainable: true);
            console.WriteLine(peft.TrainableParametersLine());
            console.WriteLine(Invariant($"base model: {WeightDType(model)} loaded in {loadSeconds:F2} s; peak memory {peak / 1048576.0:F0} MiB"));
            PrintQuantized(settings, model);
        }
        return Task.FromResult(0);
    }

    private void InspectBaseModel(InspectOptions settings, string modelDirectory)
    {
        CommandChecks.ExistingDirectory(modelDirectory, "--model");
        var task = settings.Task is { } name ? CommandChecks.SupportedTask(models, modelDirectory, new TaskType(name)) : TaskOf(modelDirectory);
        var (model, loadSeconds, peak) = Load(settings, modelDirectory, task);
        var (_, all) = ParameterCounts.Of(model);
        var device = model.parameters().Select(p => p.device.ToString()).FirstOrDefault() ?? "cpu";
        console.MarkupLineInterpolated($"[bold]{model.GetName()}[/] ({model.Config.ModelType}, {task.Name}) in {modelDirectory}");
        console.WriteLine(Invariant($"parameters: {all:N0}"));
        console.WriteLine(Invariant($"dtype: {WeightDType(model)}; device: {device}"));
        console.WriteLine(Invariant($"loaded in {loadSeconds:F2} s; peak memory {peak / 1048576.0:F0} MiB"));
        PrintQuantized(settings, model);
    }

    /// <summary>
    /// The task of config.json's first <c>architectures</c> entry (transformers' class-name suffixes) when the architecture
    /// plugin has that head, else the plugin's first task.
    /// </summary>
    private TaskType TaskOf(string modelDirectory)
    {
        var (architecture, config) = models.ReadConfig(modelDirectory);
        var name = config.Architectures is [var first, ..] ? first : "";
        (string Suffix, TaskType Task)[] suffixes =
        [
            ("ForCausalLM", TaskType.CausalLM), ("LMHeadModel", TaskType.CausalLM), ("ForConditionalGeneration", TaskType.Seq2SeqLM),
            ("ForSequenceClassification", TaskType.SequenceClassification), ("ForTokenClassification", TaskType.TokenClassification),
            ("ForQuestionAnswering", TaskType.QuestionAnswering), ("ForImageClassification", TaskType.ImageClassification),
            ("ForSemanticSegmentation", TaskType.SemanticSegmentation), ("Model", TaskType.FeatureExtraction),
        ];
        foreach (var (suffix, task) in suffixes)
        {
            if (name.EndsWith(suffix, StringComparison.Ordinal)) return architecture.SupportedTasks.Contains(task) ? task : architecture.SupportedTasks[0];
        }
        return architecture.SupportedTasks[0];
    }

    private (PreTrainedModel Model, double Seconds, long PeakBytes) Load(InspectOptions settings, string modelDirectory, TaskType task)
    {
        var loadOptions = QuantizeOptionChecks.LoadOptions(settings);
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var model = models.LoadPretrained(modelDirectory, task, loadOptions);
        // The process's peak resident set (VmHWM on Linux): in this one-command process, what loading the base took.
        return (model, clock.Elapsed.TotalSeconds, System.Diagnostics.Process.GetCurrentProcess().PeakWorkingSet64);
    }

    private void PrintQuantized(InspectOptions settings, PreTrainedModel model)
    {
        if (settings.Quantize is null) return;
        var quantizedBytes = Quantization.ModelQuantization.QuantizedBytes(model);
        console.WriteLine(Invariant($"quantized ({settings.Quantize}): {quantizedBytes / 1048576.0:F1} MiB of quantized weights and states"));
    }

    private static TorchSharp.torch.ScalarType WeightDType(PreTrainedModel model) =>
        model.parameters().Select(p => p.dtype).FirstOrDefault(t => t is TorchSharp.torch.ScalarType.Float32 or TorchSharp.torch.ScalarType.BFloat16 or TorchSharp.torch.ScalarType.Float16);

    private static string Invariant(FormattableString text) => text.ToString(System.Globalization.CultureInfo.InvariantCulture);
}
