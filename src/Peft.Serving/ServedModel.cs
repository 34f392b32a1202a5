using Microsoft.Extensions.Logging;
using Peft.Modeling;
using Peft.Serving.Chat;
using Peft.Serving.Scheduling;
using Peft.Tokenizers;

namespace Peft.Serving;

/// <summary>
/// Everything one served model needs: the <see cref="PeftModel"/> with its first adapter, the registered adapters
/// (<see cref="AdapterResidency"/>), the batching scheduler, the tokenizer and chat template, and the metrics.
/// </summary>
public sealed class ServedModel : IAsyncDisposable
{
    private ServedModel(PeftServerOptions options, AdapterResidency residency, TextGeneration text, ServingMetrics metrics, string baseModelId, IReadOnlyDictionary<string, string> tasks)
    {
        Options = options;
        Residency = residency;
        Text = text;
        Metrics = metrics;
        BaseModelId = baseModelId;
        AdapterTasks = tasks;
    }

    /// <summary>The options it was made from.</summary>
    public PeftServerOptions Options { get; }

    /// <summary>The adapters.</summary>
    public AdapterResidency Residency { get; }

    /// <summary>Text in, text out.</summary>
    public TextGeneration Text { get; }

    /// <summary>The counters.</summary>
    public ServingMetrics Metrics { get; }

    /// <summary>The base model's id in <c>/v1/models</c>.</summary>
    public string BaseModelId { get; }

    /// <summary>Each adapter's task_type as its adapter_config.json says (CAUSAL_LM, SEQ_CLS, ...).</summary>
    public IReadOnlyDictionary<string, string> AdapterTasks { get; }

    /// <summary>The adapter a request's <c>model</c> names: the base model's id (or <c>__base__</c>) is the base model.</summary>
    public string AdapterOf(string model) => model == BaseModelId ? PeftModel.BaseModelName : model;

    /// <summary>Loads the model and its first adapter, registers the others, starts the scheduler.</summary>
    /// <exception cref="ArgumentException">An option is missing or wrong (named).</exception>
    public static ServedModel Load(PeftServerOptions options, PeftModels models, ILoggerFactory? loggers = null)
    {
        if (string.IsNullOrEmpty(options.ModelDirectory) || !Directory.Exists(options.ModelDirectory)) throw new ArgumentException($"--model: '{options.ModelDirectory}' is not a directory.");
        var adapters = new Dictionary<string, string>(options.Adapters, StringComparer.Ordinal);
        if (options.AdaptersDirectory is { } root)
        {
            if (!Directory.Exists(root)) throw new ArgumentException($"--adapters-dir: '{root}' is not a directory.");
            foreach (var directory in Directory.EnumerateDirectories(root).Where(d => File.Exists(Path.Combine(d, "adapter_config.json"))).Order(StringComparer.Ordinal))
            {
                adapters.TryAdd(Path.GetFileName(directory), directory);
            }
        }
        var (firstName, firstDirectory) = options.FirstAdapter ?? (adapters.Count > 0 ? (adapters.Keys.First(), adapters.Values.First()) : throw new ArgumentException("--adapter: give at least one adapter (name=DIR) or --adapters-dir."));
        adapters.Remove(firstName);
        var firstConfig = PeftModel.ReadAdapterConfig(models.Registry, firstDirectory);
        var task = firstConfig.TaskType ?? TaskType.CausalLM;
        var peft = models.FromPretrained(models.LoadPretrained(options.ModelDirectory, task), firstDirectory, firstName);
        var residency = new AdapterResidency(peft, options.MaxResidentAdapters);
        var tasks = new Dictionary<string, string>(StringComparer.Ordinal) { [firstName] = task.ToString() };
        foreach (var (name, directory) in adapters)
        {
            var config = PeftModel.ReadAdapterConfig(models.Registry, directory);
            if ((config.TaskType ?? TaskType.CausalLM) != task)
            {
                throw new ArgumentException($"--adapter {name}: its task_type {config.TaskType} differs from the first adapter's ({task}); one server serves one task.");
            }
            residency.Register(name, directory);
            tasks[name] = task.ToString();
        }
        var tokenizer = PretrainedTokenizer.FromDirectory(options.ModelDirectory);
        var template = options.ChatTemplate is { } family ? ChatTemplate.For(family, "", "") : TryTemplate(options.ModelDirectory, loggers);
        var metrics = new ServingMetrics();
        metrics.Observe(new AdapterResidencyView(() => residency.Resident.Count, () => residency.ResidentBytes));
        var scheduler = new GenerationScheduler(residency, options.Scheduler, metrics, loggers?.CreateLogger<GenerationScheduler>());
        var text = new TextGeneration(scheduler, tokenizer, template, options.Limits);
        return new ServedModel(options, residency, text, metrics, options.BaseModelId ?? Path.GetFileName(Path.TrimEndingDirectorySeparator(Path.GetFullPath(options.ModelDirectory))), tasks);
    }

    private static ChatTemplate? TryTemplate(string directory, ILoggerFactory? loggers)
    {
        try
        {
            return ChatTemplate.FromDirectory(directory);
        }
        catch (NotSupportedException e)
        {
            loggers?.CreateLogger<ServedModel>().LogWarning("Chat is off: {Reason}", e.Message);
            return null;
        }
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        await Text.Scheduler.DisposeAsync().ConfigureAwait(false);
        Metrics.Dispose();
    }
}
