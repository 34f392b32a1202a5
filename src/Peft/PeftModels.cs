using System.Text.Json;
using Peft.Checkpoints;
using Peft.Modeling;
using Peft.Plugins;
using Peft.Quantization;
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
        var bytes = File.ReadAllBytes(path);
        // The JSON reader checks UTF-8 only in what it decodes, and then throws an InvalidOperationException (found by fuzz/Peft.Fuzz).
        if (!System.Text.Unicode.Utf8.IsValid(bytes)) throw new ModelConfigException($"{path}: not valid UTF-8 (JSON files are UTF-8).");
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(bytes, new JsonDocumentOptions { AllowTrailingCommas = true });
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
    /// Builds the model for <paramref name="task"/> from <paramref name="modelDirectory"/> and loads its weights by name,
    /// in float32 on the CPU. Head weights the checkpoint lacks are freshly initialised (fine-tuning a bare model for classification).
    /// </summary>
    /// <param name="modelDirectory">A directory with config.json and model.safetensors (or an index and shards).</param>
    /// <param name="task">Which head to build.</param>
    /// <param name="configure">Adjusts the config before building (e.g. <c>c =&gt; c with { NumLabelsValue = 5 }</c> for a new classifier).</param>
    public PreTrainedModel LoadPretrained(string modelDirectory, TaskType task, Func<ModelConfig, ModelConfig>? configure = null) =>
        LoadPretrained(modelDirectory, task, ModelLoadOptions.Default, configure);

    /// <summary>
    /// Builds the model for <paramref name="task"/> from <paramref name="modelDirectory"/> in the dtype and on the device
    /// <paramref name="options"/> ask for. Every header is validated first; the module tree is built without storage
    /// (no random initialisation of weights the checkpoint provides), then each weight goes from the memory-mapped file
    /// to its parameter, one at a time (a view of the file when dtype and device already match). Head weights the
    /// checkpoint lacks are freshly initialised. The model is returned in eval mode.
    /// </summary>
    /// <param name="modelDirectory">A directory with config.json and model.safetensors (or an index and shards).</param>
    /// <param name="task">Which head to build.</param>
    /// <param name="options">dtype and device (<see cref="ModelLoadOptions.Default"/>: float32 on the CPU).</param>
    /// <param name="configure">Adjusts the config before building.</param>
    /// <exception cref="ModelConfigException">config.json is missing or invalid, or names a dtype auto cannot load.</exception>
    /// <exception cref="CheckpointException">A header is invalid, or a weight the model needs is missing or has another shape.</exception>
    /// <exception cref="ArgumentException">The options name a device that is not cpu, cuda or cuda:N, or one this machine lacks.</exception>
    public PreTrainedModel LoadPretrained(string modelDirectory, TaskType task, ModelLoadOptions options, Func<ModelConfig, ModelConfig>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        var device = options.ResolveDevice();
        var phase = LoadTrace.Phase("config");
        var (architecture, config) = ReadConfig(modelDirectory);
        if (configure is not null)
        {
            config = configure(config);
            config.Validate(Path.Combine(modelDirectory, "config.json"));
        }
        phase?.Stop();
        phase = LoadTrace.Phase("headers");
        using var checkpoint = MappedCheckpoint.Open(modelDirectory);
        checkpoint.PopulatePages = options.PopulatePages;
        // From the headers alone, before anything is allocated: a config that promises more than the weights hold is refused by key.
        config.CheckAgainstCheckpoint(Path.Combine(modelDirectory, "config.json"), modelDirectory,
            checkpoint.Names.Select(name => (name, checkpoint.Info(name).Shape)).ToList());
        var dtype = options.ResolveDType(config, FirstFloatingType(checkpoint));
        var quantization = QuantizationFor(modelDirectory, options);
        quantization?.Validate();
        phase?.Stop();
        phase = LoadTrace.Phase("build");
        var model = options.LowCpuMemoryUsage ? CheckpointLoader.BuildEmpty(architecture, config, task) : architecture.Build(config, task);
        phase?.Stop();
        model.NameOrPath = NameOrPath(config, modelDirectory);
        model.Architecture = architecture;
        try
        {
            if (quantization is not null) Quantization.ModelQuantization.ReplaceWithEmpty(model, quantization, dtype);
            CheckpointLoader.Load(model, checkpoint, dtype, device);
        }
        catch
        {
            model.Dispose();
            throw;
        }
        model.eval();
        WarnAboutSlowHalfPrecision(dtype, device);
        return model;
    }

    /// <summary>
    /// Says, on every such load, that half-precision matrix products are slow here: the library caps oneDNN at AVX2 on
    /// AVX-512 CPUs (Peft.Native.OneDnnIsa: its AVX-512 convolutions return NaN on Zen 4), and oneDNN has no fast
    /// bf16/fp16 kernels below AVX-512, so a bf16 LoRA step of a Llama layer took 350 s capped and 2 s uncapped.
    /// </summary>
    private static void WarnAboutSlowHalfPrecision(ScalarType dtype, Device device)
    {
        if (dtype is not (ScalarType.BFloat16 or ScalarType.Float16) || device.type != DeviceType.CPU) return;
        if (!System.Runtime.Intrinsics.X86.Avx512F.IsSupported || Environment.GetEnvironmentVariable("ONEDNN_MAX_CPU_ISA") != "AVX2") return;
        PeftLog.Warn($"{dtype} on the CPU with ONEDNN_MAX_CPU_ISA=AVX2 (the library's default on AVX-512 CPUs, which avoids NaN from "
            + "oneDNN's AVX-512 convolutions): matrix products in half precision are about 100x slower than float32. For a model "
            + "without convolutions, start the process with ONEDNN_MAX_CPU_ISA=ALL, or load it in float32.");
    }

    /// <summary>config.json's <c>_name_or_path</c> (a Hub id survives a download into a cache), else the directory.</summary>
    private static string NameOrPath(ModelConfig config, string modelDirectory) =>
        config.ExtensionData?.TryGetValue("_name_or_path", out var name) == true && name.ValueKind == JsonValueKind.String && name.GetString() is { Length: > 0 } given
            ? given
            : modelDirectory;

    private static ScalarType? FirstFloatingType(MappedCheckpoint checkpoint)
    {
        foreach (var name in checkpoint.Names)
        {
            if (SafeTensorsDTypes.TryGet(checkpoint.Info(name).DType, out var type, out _) && type.IsFloatingPointType()) return type;
        }
        return null;
    }

    /// <summary>
    /// The caller's quantization, or the checkpoint's own <c>quantization_config</c> (a model published pre-quantized
    /// loads as stored without being asked, as in transformers); where both are given and differ, the checkpoint's wins, with a warning.
    /// </summary>
    private static QuantizationOptions? QuantizationFor(string modelDirectory, ModelLoadOptions options)
    {
        var saved = QuantizationConfigReader.Read(Path.Combine(modelDirectory, "config.json"));
        if (saved is null) return options.Quantization;
        if (options.Quantization is { } asked && !SameFormat(asked, saved))
        {
            PeftLog.Warn($"{modelDirectory} is already quantized ({saved.Type.Name()}, from config.json's quantization_config); the quantization asked for ({asked.Type.Name()}) is not applied.");
        }
        return saved;
    }

    private static bool SameFormat(QuantizationOptions a, QuantizationOptions b) =>
        a.Type == b.Type && a.Bnb4BitUseDoubleQuant == b.Bnb4BitUseDoubleQuant && a.Bnb4BitComputeDType == b.Bnb4BitComputeDType;

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

    /// <summary>Files of a model directory that travel with its weights (tokenizer, generation settings).</summary>
    private static readonly string[] CompanionFiles =
        ["vocab.txt", "vocab.json", "merges.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "generation_config.json"];

    /// <summary>
    /// Writes <paramref name="model"/> as a Hugging Face model directory (transformers' save_pretrained), for
    /// a model loaded from <paramref name="modelDirectory"/> and changed since (a merged and unloaded adapter):
    /// its weights as safetensors (sharded above 5 GB), that directory's config.json with
    /// <c>tie_word_embeddings</c> as the model now is, and its tokenizer and generation files. The folder is
    /// replaced atomically, so a reader never sees half a model.
    /// </summary>
    /// <param name="model">The model to save.</param>
    /// <param name="outputDirectory">Where to write it.</param>
    /// <param name="modelDirectory">The directory it was loaded from.</param>
    /// <exception cref="InvalidOperationException">The model holds quantized layers (their state is not in state_dict).</exception>
    public static void SavePretrained(PreTrainedModel model, string outputDirectory, string modelDirectory)
    {
        ArgumentNullException.ThrowIfNull(model);
        if (model.modules().OfType<Quantization.QuantizedLinear>().FirstOrDefault() is { } quantized)
        {
            throw new InvalidOperationException($"The model holds {quantized.Format} layers, whose quantization state a plain save would lose; "
                + "save a dense model (PeftModel.MergeAndUnload(dtype), or ModelQuantization.Dequantize) or only the adapter.");
        }
        var config = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(Path.Combine(modelDirectory, "config.json")))!.AsObject();
        // Merging into a tied embedding gave the head its own copy of the weight: the saved model is untied.
        if (model.OutputEmbeddingsUntied) config["tie_word_embeddings"] = false;
        var state = model.state_dict();
        // As transformers' save_pretrained: a weight still shared with its source (the same parameter) is stored once, under the source's name.
        foreach (var (tied, source) in model.TiedWeights)
        {
            if (state.TryGetValue(tied, out var t) && state.TryGetValue(source, out var s) && t.Handle == s.Handle) state.Remove(tied);
        }
        var weights = state.ToDictionary(kv => kv.Key, kv => kv.Value.detach().contiguous());
        AtomicDirectory.Write(outputDirectory, staging =>
        {
            ModelWeights.Save(staging, weights);
            File.WriteAllText(Path.Combine(staging, "config.json"), config.ToJsonString(PeftJson.Options));
            foreach (var name in CompanionFiles)
            {
                var source = Path.Combine(modelDirectory, name);
                if (File.Exists(source)) File.Copy(source, Path.Combine(staging, name), overwrite: true);
            }
        });
    }

    /// <summary>Wraps <paramref name="model"/> with a new adapter described by <paramref name="config"/> (the reference's get_peft_model).</summary>
    public PeftModel GetPeftModel(PreTrainedModel model, PeftConfig config, string adapterName = PeftModel.DefaultAdapterName) =>
        PeftModel.Create(model, registry, config, adapterName);

    /// <summary>Wraps <paramref name="model"/> with the adapter saved in <paramref name="adapterDirectory"/> (the reference's PeftModel.from_pretrained).</summary>
    /// <param name="model">The base model.</param>
    /// <param name="adapterDirectory">A directory with adapter_config.json and adapter_model.safetensors.</param>
    /// <param name="adapterName">The name to give the adapter.</param>
    /// <param name="isTrainable">False (inference) leaves every parameter frozen.</param>
    public PeftModel FromPretrained(PreTrainedModel model, string adapterDirectory, string adapterName = PeftModel.DefaultAdapterName, bool isTrainable = false) =>
        PeftModel.FromPretrained(model, registry, adapterDirectory, adapterName, isTrainable);

    /// <summary>Reads <c>adapter_config.json</c> in <paramref name="adapterDirectory"/> through the method plugin its peft_type names.</summary>
    /// <exception cref="PeftConfigException">The file is missing, unreadable or names an unknown method.</exception>
    public PeftConfig ReadAdapterConfig(string adapterDirectory) => PeftModel.ReadAdapterConfig(registry, adapterDirectory);
}
