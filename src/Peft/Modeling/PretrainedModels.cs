using System.Text.Json;
using Peft.Checkpoints;
using Peft.Modeling;
using Peft.Plugins;
using TorchSharp;
using static TorchSharp.torch;

namespace Peft;

/// <summary>
/// Loads Hugging Face model directories (config.json + safetensors) through the registered
/// architecture plugins, and attaches adapters to them. The entry point for hosted use (resolve
/// it from DI after <c>AddPeft()</c>); <see cref="Default"/> serves use without a host.
/// </summary>
public sealed class PeftModels(PeftRegistry registry)
{
    /// <summary>A loader over the built-in plugins.</summary>
    public static PeftModels Default { get; } = new(PeftRegistry.Default);

    /// <summary>The plugins this loader uses.</summary>
    public PeftRegistry Registry => registry;

    /// <summary>Reads <c>config.json</c> in <paramref name="modelDirectory"/> into its architecture's typed config.</summary>
    /// <exception cref="ModelConfigException">The file is missing or unreadable, lacks model_type, or a key is missing or wrong.</exception>
    public (IArchitecture Architecture, ModelConfig Config) ReadConfig(string modelDirectory)
    {
        var path = Path.Combine(modelDirectory, "config.json");
        if (!File.Exists(path))
        {
            throw new ModelConfigException($"{path}: not found; a model directory needs config.json and model.safetensors.");
        }
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(File.ReadAllBytes(path), new JsonDocumentOptions { AllowTrailingCommas = true });
        }
        catch (JsonException e)
        {
            throw new ModelConfigException($"{path}: not valid JSON ({e.Message}).", e);
        }
        using (document)
        {
            var root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object || !root.TryGetProperty("model_type", out var modelType) || modelType.ValueKind != JsonValueKind.String)
            {
                throw new ModelConfigException($"{path}: missing required key 'model_type'.");
            }
            if (!registry.HasArchitecture(modelType.GetString()!))
            {
                throw new ModelConfigException(
                    $"{path}: model_type '{modelType.GetString()}' has no architecture plugin. {registry.DescribeArchitectures()}");
            }
            var architecture = registry.Architecture(modelType.GetString()!);
            return (architecture, architecture.ParseConfig(root, path));
        }
    }

    /// <summary>
    /// Builds the model for <paramref name="task"/> from <paramref name="modelDirectory"/> and loads its weights by name.
    /// Head weights the checkpoint lacks stay freshly initialised (fine-tuning a bare model for classification).
    /// </summary>
    /// <param name="modelDirectory">A directory with config.json and model.safetensors (or an index and shards).</param>
    /// <param name="task">Which head to build.</param>
    /// <param name="configure">Adjusts the config before building (e.g. <c>c =&gt; c with { NumLabelsValue = 5 }</c> for a new classifier).</param>
    public PreTrainedModel LoadPretrained(string modelDirectory, TaskType task, Func<ModelConfig, ModelConfig>? configure = null)
    {
        var (architecture, config) = ReadConfig(modelDirectory);
        if (configure is not null) config = configure(config);
        var model = architecture.Build(config, task);
        var weights = ModelWeights.Load(modelDirectory);
        try
        {
            LoadWeights(model, weights, modelDirectory);
        }
        finally
        {
            foreach (var tensor in weights.Values) tensor.Dispose();
        }
        model.eval();
        return model;
    }

    /// <summary>Copies <paramref name="weights"/> into <paramref name="model"/> by name, checking shapes.</summary>
    /// <exception cref="CheckpointException">A weight the model needs is missing or has another shape.</exception>
    public static void LoadWeights(PreTrainedModel model, IReadOnlyDictionary<string, Tensor> weights, string source)
    {
        // Checkpoints in the classic spelling (transformers 4) load into run-time names.
        if (model.ClassicNames.Rules.Count > 0) weights = weights.ToDictionary(kv => model.ClassicNames.ToCurrent(kv.Key), kv => kv.Value);
        var prefix = model.BaseModelPrefix is { } p && !weights.Keys.Any(k => k.StartsWith(p + ".", StringComparison.Ordinal)) ? p + "." : "";
        var heads = model.HeadModuleNames;
        using var noGrad = torch.no_grad();
        foreach (var (name, target) in model.state_dict())
        {
            var key = prefix.Length > 0 && name.StartsWith(prefix, StringComparison.Ordinal) ? name[prefix.Length..] : name;
            if (!weights.TryGetValue(key, out var value))
            {
                if (heads.Any(h => name.StartsWith(h + ".", StringComparison.Ordinal))) continue;
                throw new CheckpointException(source, key, "the model needs this weight but the checkpoint has none.");
            }
            if (!value.shape.SequenceEqual(target.shape))
            {
                throw new CheckpointException(source, key,
                    $"shape [{string.Join(", ", value.shape)}] does not fit the model's [{string.Join(", ", target.shape)}].");
            }
            target.copy_(value);
        }
    }

    /// <summary>Wraps <paramref name="model"/> with a new adapter described by <paramref name="config"/> (the reference's get_peft_model).</summary>
    public PeftModel GetPeftModel(PreTrainedModel model, PeftConfig config, string adapterName = PeftModel.DefaultAdapterName) =>
        PeftModel.Create(model, registry, config, adapterName);

    /// <summary>Wraps <paramref name="model"/> with the adapter saved in <paramref name="adapterDirectory"/>.</summary>
    public PeftModel FromPretrained(PreTrainedModel model, string adapterDirectory, string adapterName = PeftModel.DefaultAdapterName, bool isTrainable = false) =>
        PeftModel.FromPretrained(model, registry, adapterDirectory, adapterName, isTrainable);
}
