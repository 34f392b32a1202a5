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
    private ServedModel(PeftServerOptions options, AdapterResidency residency, TextGeneration? text, SequenceClassifier? classifier, ServingMetrics metrics, string baseModelId, IReadOnlyDictionary<string, string> tasks)
    {
        Options = options;
        Residency = residency;
        Generation = text;
        Classifier = classifier;
        Metrics = metrics;
        BaseModelId = baseModelId;
        AdapterTasks = tasks;
    }

    /// <summary>The options it was made from.</summary>
    public PeftServerOptions Options { get; }

    /// <summary>The adapters.</summary>
    public AdapterResidency Residency { get; }

    /// <summary>Text in, text out (language models); null for a classifier.</summary>
    public TextGeneration? Generation { get; }

    /// <summary>Text in, text out.</summary>
    /// <exception cref="InvalidRequestException">The served model is a classifier (use /v1/classify).</exception>
    public TextGeneration Text => Generation ?? throw new InvalidRequestException($"This server serves a {Task} model; use /v1/classify.", "model");

    /// <summary>Classification (SEQ_CLS adapters); null for a language model.</summary>
    public SequenceClassifier? Classifier { get; }

    /// <summary>The task every served adapter was trained for.</summary>
    public TaskType Task => Residency.Model.PeftConfig.TaskType ?? TaskType.CausalLM;

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
        var firstConfig = models.ReadAdapterConfig(firstDirectory);
        var task = firstConfig.TaskType ?? TaskType.CausalLM;
        var classifies = task == TaskType.SequenceClassification;
        if (!classifies && task != TaskType.CausalLM && task != TaskType.Seq2SeqLM)
        {
            throw new ArgumentException($"--adapter {firstName}: task_type {task} is not served (CAUSAL_LM, SEQ_2_SEQ_LM, SEQ_CLS).");
        }
        var labels = new Dictionary<string, IReadOnlyList<string>>(StringComparer.Ordinal);
        if (classifies && SequenceClassifier.ReadLabels(firstDirectory) is { } firstLabels) labels[firstName] = firstLabels;
        var model = models.LoadPretrained(options.ModelDirectory, task, c => !labels.TryGetValue(firstName, out var names) ? c : c with
        {
            NumLabelsValue = names.Count,
            Id2Label = names.Select((n, i) => (n, i)).ToDictionary(p => p.i.ToString(System.Globalization.CultureInfo.InvariantCulture), p => p.n),
        });
        var peft = models.FromPretrained(model, firstDirectory, firstName);
        var residency = new AdapterResidency(peft, options.MaxResidentAdapters);
        var tasks = new Dictionary<string, string>(StringComparer.Ordinal) { [firstName] = task.ToString() };
        foreach (var (name, directory) in adapters)
        {
            var config = models.ReadAdapterConfig(directory);
            if ((config.TaskType ?? TaskType.CausalLM) != task)
            {
                throw new ArgumentException($"--adapter {name}: its task_type {config.TaskType} differs from the first adapter's ({task}); one server serves one task.");
            }
            if (classifies && SequenceClassifier.ReadLabels(directory) is { } names)
            {
                if (names.Count != model.Config.NumLabels) throw new ArgumentException($"--adapter {name}: {names.Count} labels, but the model's head has {model.Config.NumLabels}.");
                labels[name] = names;
            }
            residency.Register(name, directory);
            tasks[name] = task.ToString();
        }
        var tokenizer = PretrainedTokenizer.FromDirectory(options.ModelDirectory);
        var metrics = new ServingMetrics();
        metrics.Observe(new AdapterResidencyView(() => residency.Resident.Count, () => residency.ResidentBytes));
        var baseId = options.BaseModelId ?? Path.GetFileName(Path.TrimEndingDirectorySeparator(Path.GetFullPath(options.ModelDirectory)));
        if (classifies)
        {
            var classifier = new SequenceClassifier(residency, tokenizer, labels, options.Limits.MaxPromptTokens);
            return new ServedModel(options, residency, null, classifier, metrics, baseId, tasks);
        }
        var template = options.ChatTemplate is { } family ? ChatTemplate.For(family, "", "") : TryTemplate(options.ModelDirectory, loggers);
        var scheduler = new GenerationScheduler(residency, options.Scheduler, metrics, loggers?.CreateLogger<GenerationScheduler>());
        var text = new TextGeneration(scheduler, tokenizer, template, options.Limits, ModelSamplingDefaults.FromDirectory(options.ModelDirectory));
        return new ServedModel(options, residency, text, null, metrics, baseId, tasks);
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
        if (Generation is not null) await Generation.Scheduler.DisposeAsync().ConfigureAwait(false);
        Metrics.Dispose();
    }
}
