using System.Text.Json;
using Microsoft.Extensions.Options;
using Peft.Checkpoints;
using Peft.Cli.Hosting;
using Spectre.Console;

namespace Peft.Cli.Commands;

/// <summary><c>peft inspect</c>: an adapter's config, tensors, sizes and (with a base model) the trainable-parameter line.</summary>
public sealed class InspectCommand(IOptions<InspectOptions> options, PeftModels models, IAnsiConsole console) : ICliCommand
{
    /// <inheritdoc />
    public Task<int> RunAsync(CancellationToken cancellationToken)
    {
        var settings = options.Value;
        var adapter = settings.Adapter ?? throw new CommandLineException("--adapter <directory> is required.");
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
            var task = settings.Task is { } name ? new TaskType(name) : config.TaskType ?? throw new CommandLineException("--task: the adapter has no task_type; pass --task.");
            var loadOptions = QuantizeOptionChecks.LoadOptions(settings);
            var clock = System.Diagnostics.Stopwatch.StartNew();
            var model = models.LoadPretrained(modelDirectory, task, loadOptions);
            var loadSeconds = clock.Elapsed.TotalSeconds;
            // The process's peak resident set (VmHWM on Linux): in this one-command process, what loading the base took.
            var peak = System.Diagnostics.Process.GetCurrentProcess().PeakWorkingSet64;
            var peft = models.FromPretrained(model, adapter, isTrainable: true);
            console.WriteLine(peft.TrainableParametersLine());
            var dtype = model.parameters().Select(p => p.dtype).FirstOrDefault(t => t is TorchSharp.torch.ScalarType.Float32 or TorchSharp.torch.ScalarType.BFloat16 or TorchSharp.torch.ScalarType.Float16);
            console.WriteLine(string.Create(System.Globalization.CultureInfo.InvariantCulture,
                $"base model: {dtype} loaded in {loadSeconds:F2} s; peak memory {peak / 1048576.0:F0} MiB"));
            if (loadOptions.Quantization is not null)
            {
                var quantizedBytes = Quantization.ModelQuantization.QuantizedBytes(model);
                console.WriteLine(string.Create(System.Globalization.CultureInfo.InvariantCulture,
                    $"quantized ({settings.Quantize}): {quantizedBytes / 1048576.0:F1} MiB of quantized weights and states"));
            }
        }
        return Task.FromResult(0);
    }
}
