using System.ComponentModel;
using System.ComponentModel.DataAnnotations;
using Peft.Modeling;
using Peft.Quantization;

namespace Peft.Cli.Hosting;

/// <summary>
/// How a command loads its base model: dtype, device and quantization, the options every model-loading command
/// shares (their counterparts of from_pretrained's keyword arguments), declared once here.
/// </summary>
public abstract class ModelLoadingOptions
{
    /// <summary>Quantize the base model on load: int8, nf4 or fp4, or null: not quantized (see <see cref="QuantizeOptionChecks"/>).</summary>
    [Description(QuantizeOptionChecks.QuantizeHelp)]
    [AllowedValues("int8", "nf4", "fp4")]
    public string? Quantize { get; set; }

    /// <summary>4-bit only: quantize the absmax values too.</summary>
    [Description(QuantizeOptionChecks.DoubleQuantHelp)]
    public bool DoubleQuant { get; set; }

    /// <summary>4-bit only: the compute dtype.</summary>
    [Description(QuantizeOptionChecks.ComputeDtypeHelp)]
    [AllowedValues("float32", "bfloat16", "float16")]
    public string? ComputeDtype { get; set; }

    /// <summary>The weights' dtype: auto (config.json's), float32, bfloat16, float16; null: float32.</summary>
    [Description(QuantizeOptionChecks.DtypeHelp)]
    [AllowedValues("auto", "float32", "bfloat16", "float16")]
    public string? Dtype { get; set; }

    /// <summary>cpu, cuda or cuda:N; null: cpu.</summary>
    [Description(QuantizeOptionChecks.DeviceHelp)]
    public string? Device { get; set; }

    /// <summary>Build the model on the meta device and map the weights in (<see cref="ModelLoadOptions.LowCpuMemoryUsage"/>); on by default in the CLI, where one command runs per process.</summary>
    [Description(QuantizeOptionChecks.LowCpuMemoryUsageHelp)]
    public bool LowCpuMemoryUsage { get; set; } = true;
}

/// <summary>Turns <see cref="ModelLoadingOptions"/> into load options, refusing combinations that mean nothing.</summary>
public static class QuantizeOptionChecks
{
    /// <summary>The help text of <c>--quantize</c>.</summary>
    public const string QuantizeHelp = "Load the base model's Linear layers quantized as bitsandbytes stores them: int8 (LLM.int8 rows), nf4 or fp4 (4-bit blocks of 64); output heads stay in floating point [default: not quantized]";

    /// <summary>The help text of <c>--double-quant</c>.</summary>
    public const string DoubleQuantHelp = "With --quantize nf4|fp4: quantize the block absmax values too (bnb_4bit_use_double_quant).";

    /// <summary>The help text of <c>--compute-dtype</c>.</summary>
    public const string ComputeDtypeHelp = "With --quantize nf4|fp4: the dtype 4-bit layers compute in: float32, bfloat16, float16 (bnb_4bit_compute_dtype) [default: float32]";

    /// <summary>The help text of <c>--dtype</c>.</summary>
    public const string DtypeHelp = "The dtype the weights load in: auto (config.json's torch_dtype), float32, bfloat16, float16; adapters train in float32 over a half-precision base [default: float32]";

    /// <summary>The help text of <c>--device</c>.</summary>
    public const string DeviceHelp = "Where the model runs: cpu, cuda or cuda:N (a CUDA build of libtorch and a GPU) [default: cpu]";

    /// <summary>The help text of <c>--low-cpu-memory-usage</c>.</summary>
    public const string LowCpuMemoryUsageHelp = "Build the model without initialising its weights and map the checkpoint's tensors in (transformers' low_cpu_mem_usage): about the files' size in memory instead of twice the model; false builds and initialises the model first";

    /// <summary>The problems of the options, empty when they are fine.</summary>
    public static IEnumerable<string> Problems(ModelLoadingOptions options)
    {
        if (options.Quantize is null)
        {
            if (options.DoubleQuant) yield return "--double-quant needs --quantize nf4 or fp4";
            if (options.ComputeDtype is not null) yield return "--compute-dtype needs --quantize nf4 or fp4";
            yield break;
        }
        if (options.Quantize is not ("int8" or "nf4" or "fp4"))
        {
            yield return $"--quantize: '{options.Quantize}' is not one of int8, nf4, fp4";
            yield break;
        }
        if (options.Quantize == "int8" && options.DoubleQuant) yield return "--double-quant applies to 4-bit storage (--quantize nf4 or fp4), not int8";
        if (options.Quantize == "int8" && options.ComputeDtype is not null) yield return "--compute-dtype applies to 4-bit storage (--quantize nf4 or fp4); int8 layers compute in the model's dtype";
        if (options.ComputeDtype is { } dtype && dtype is not ("float32" or "bfloat16" or "float16"))
        {
            yield return $"--compute-dtype: '{dtype}' is not one of float32, bfloat16, float16";
        }
    }

    /// <summary>The load options the quantization options ask for (the defaults when none).</summary>
    /// <exception cref="CommandLineException">A problem of <see cref="Problems"/>.</exception>
    public static ModelLoadOptions LoadOptions(ModelLoadingOptions options)
    {
        var problems = Problems(options).ToList();
        if (problems.Count > 0) throw new CommandLineException(string.Join("; ", problems) + ".");
        var placed = new ModelLoadOptions
        {
            DType = options.Dtype is { } dtype ? ModelLoadOptions.ParseDType(dtype) : ModelDType.Float32,
            Device = options.Device ?? "cpu",
            LowCpuMemoryUsage = options.LowCpuMemoryUsage,
        };
        try
        {
            _ = placed.ResolveDevice();
        }
        catch (ArgumentException e)
        {
            // The library names its own property; the user typed --device.
            var reason = e.Message.Replace($"{nameof(ModelLoadOptions)}.{nameof(ModelLoadOptions.Device)} ", "", StringComparison.Ordinal);
            var parameter = $" (Parameter '{e.ParamName}')";
            throw new CommandLineException($"--device: {(reason.EndsWith(parameter, StringComparison.Ordinal) ? reason[..^parameter.Length] : reason)}");
        }
        if (options.Quantize is null) return placed;
        var type = QuantTypes.Parse(options.Quantize);
        return placed with
        {
            Quantization = type == QuantType.Int8
                ? new QuantizationOptions { LoadIn8Bit = true }
                : new QuantizationOptions
                {
                    LoadIn4Bit = true,
                    Bnb4BitQuantType = options.Quantize,
                    Bnb4BitUseDoubleQuant = options.DoubleQuant,
                    Bnb4BitComputeDType = ModelLoadOptions.ParseDType(options.ComputeDtype ?? "float32"),
                },
        };
    }
}
