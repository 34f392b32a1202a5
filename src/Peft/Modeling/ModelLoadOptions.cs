using System.Text.Json;
using Peft.Plugins;
using TorchSharp;

namespace Peft.Modeling;

/// <summary>The floating-point type a model's weights are loaded in.</summary>
public enum ModelDType
{
    /// <summary>The checkpoint's own: config.json's <c>torch_dtype</c> (or <c>dtype</c>), else the first floating-point weight's.</summary>
    Auto,

    /// <summary>float32 (the default, as before these options existed).</summary>
    Float32,

    /// <summary>bfloat16.</summary>
    BFloat16,

    /// <summary>float16.</summary>
    Float16,
}

/// <summary>
/// How <see cref="PeftModels.LoadPretrained(string, TaskType, ModelLoadOptions, Func{ModelConfig, ModelConfig}?)"/>
/// places a model: the counterpart of transformers' <c>from_pretrained(dtype=..., device_map=...)</c> arguments.
/// The defaults (float32 on the CPU) are what loading did before the options existed.
/// </summary>
public sealed record ModelLoadOptions
{
    /// <summary>float32 on the CPU.</summary>
    public static ModelLoadOptions Default { get; } = new();

    /// <summary>The weights' floating-point type (<see cref="ModelDType.Float32"/> by default).</summary>
    public ModelDType DType { get; init; } = ModelDType.Float32;

    /// <summary>Where the weights go: <c>cpu</c> (the default), <c>cuda</c> or <c>cuda:N</c>.</summary>
    public string Device { get; init; } = "cpu";

    /// <summary>
    /// Builds the module tree on the <c>meta</c> device, so no weight the checkpoint provides is ever randomly
    /// initialised or held twice (transformers' <c>low_cpu_mem_usage</c>): the way to load a model near the size
    /// of memory. Off by default because TorchSharp's default device is process-wide: while the tree is built
    /// (milliseconds), a tensor that another thread creates without naming a device lands on <c>meta</c>. Turn it
    /// on where no other thread runs torch during loading.
    /// </summary>
    public bool LowCpuMemoryUsage { get; init; }

    /// <summary>
    /// Whether weights loaded in their stored dtype on the CPU, which are views of the memory-mapped files (sharing the
    /// page cache), are made resident as they are loaded, in bulk (<c>madvise(MADV_POPULATE_READ)</c> on Linux ≥ 5.14;
    /// elsewhere one read per page): true by default, so the returned model holds its weights in memory and its first
    /// forward pays no page faults. False leaves them lazily mapped, each page read on first use: loading returns
    /// sooner, the first forward pays the rest, and weights a run never touches stay out of memory. Weights converted to
    /// another dtype or device are read in full while loading either way.
    /// </summary>
    public bool PopulatePages { get; init; } = true;

    /// <summary>
    /// Quantize the model body's Linear layers on load (transformers' <c>quantization_config</c>), or null to keep every
    /// weight in <see cref="DType"/>. Each weight is read and quantized alone, so memory stays near the quantized size
    /// (with <see cref="LowCpuMemoryUsage"/>). A checkpoint saved by bitsandbytes (4-bit <c>weight.absmax</c>... or
    /// 8-bit <c>SCB</c>) is read as stored.
    /// </summary>
    public QuantizationOptions? Quantization { get; init; }

    /// <summary>Parses a dtype name as the CLI and config.json spell it (<c>auto</c>, <c>float32</c>, <c>bfloat16</c>, <c>float16</c>; also <c>bf16</c>, <c>fp16</c>, <c>fp32</c>).</summary>
    /// <exception cref="ArgumentException">The name is none of these.</exception>
    public static ModelDType ParseDType(string name) => name.Trim().ToLowerInvariant() switch
    {
        "auto" => ModelDType.Auto,
        "float32" or "float" or "fp32" => ModelDType.Float32,
        "bfloat16" or "bf16" => ModelDType.BFloat16,
        "float16" or "half" or "fp16" => ModelDType.Float16,
        _ => throw new ArgumentException($"dtype '{name}' is not one of auto, float32, bfloat16, float16.", nameof(name)),
    };

    /// <summary>The TorchSharp device <see cref="Device"/> names, checked to exist.</summary>
    /// <exception cref="ArgumentException">The name is not cpu, cuda or cuda:N, or names a device this machine lacks.</exception>
    public torch.Device ResolveDevice()
    {
        var name = Device.Trim().ToLowerInvariant();
        if (name == "cpu") return torch.CPU;
        var index = 0;
        if (name != "cuda" && !(name.StartsWith("cuda:", StringComparison.Ordinal) && int.TryParse(name.AsSpan(5), out index) && index >= 0))
        {
            throw new ArgumentException($"{nameof(ModelLoadOptions)}.{nameof(Device)} '{Device}' is not one of cpu, cuda, cuda:N.", nameof(Device));
        }
        if (!torch.cuda.is_available())
        {
            throw new ArgumentException($"{nameof(ModelLoadOptions)}.{nameof(Device)} '{Device}': CUDA is not available to TorchSharp here (the CPU build of libtorch, or no GPU).", nameof(Device));
        }
        if (index >= torch.cuda.device_count())
        {
            throw new ArgumentException($"{nameof(ModelLoadOptions)}.{nameof(Device)} '{Device}': this machine has {torch.cuda.device_count()} CUDA device(s).", nameof(Device));
        }
        return new torch.Device(DeviceType.CUDA, index);
    }

    /// <summary>
    /// The scalar type the weights are loaded in: <see cref="DType"/>, or for <see cref="ModelDType.Auto"/> the
    /// config's <c>torch_dtype</c>/<c>dtype</c>, else <paramref name="firstFloatingWeight"/>, else float32.
    /// </summary>
    /// <exception cref="ModelConfigException">config.json names a dtype other than float32, bfloat16 or float16.</exception>
    public torch.ScalarType ResolveDType(ModelConfig config, torch.ScalarType? firstFloatingWeight)
    {
        switch (DType)
        {
            case ModelDType.Float32: return torch.ScalarType.Float32;
            case ModelDType.BFloat16: return torch.ScalarType.BFloat16;
            case ModelDType.Float16: return torch.ScalarType.Float16;
        }
        foreach (var key in (string[])["dtype", "torch_dtype"])
        {
            if (config.ExtensionData?.TryGetValue(key, out var value) == true && value.ValueKind == JsonValueKind.String)
            {
                try
                {
                    return ParseDType(value.GetString()!) switch
                    {
                        ModelDType.BFloat16 => torch.ScalarType.BFloat16,
                        ModelDType.Float16 => torch.ScalarType.Float16,
                        ModelDType.Float32 => torch.ScalarType.Float32,
                        _ => throw new ArgumentException("auto"),
                    };
                }
                catch (ArgumentException)
                {
                    throw new ModelConfigException($"config.json: {key} '{value.GetString()}' cannot be loaded with dtype auto (float32, bfloat16 and float16 can); ask for a dtype instead.");
                }
            }
        }
        return firstFloatingWeight ?? torch.ScalarType.Float32;
    }
}
