using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Peft.Native;

/// <summary>
/// Caps oneDNN (libtorch's CPU convolution library) at AVX2 before it first runs, unless the user chose a cap.
/// </summary>
/// <remarks>
/// On an AMD EPYC with AVX-512 (Zen 4: avx512_bf16, avx512_vbmi) the AVX-512 convolution kernels of the libtorch
/// that TorchSharp-cpu 0.107 ships return NaN in part of the output, for finite inputs and weights, in 13 to 313 of
/// 400 calls of a plain 3×3 Conv2d over (4, 24, 4, 4) depending on what else is allocated; forward and backward alike,
/// one thread or two. With <c>ONEDNN_MAX_CPU_ISA=AVX2</c> it is 0 of 400 in every variant
/// (<c>ConvolutionKernelTests</c>). That broke LoRA on ResNet's convolutions and the UNet in float32. oneDNN reads
/// the variable once, when it first picks a kernel, and .NET's <see cref="Environment.SetEnvironmentVariable(string, string)"/>
/// does not reach the native environment on Linux, so it is set through libc here, as the library loads.
/// float32 matrix products (Linear layers) do not go through oneDNN and keep their AVX-512 kernels; bf16 and fp16 ones
/// do, and without AVX-512 oneDNN has no fast kernels for them (a bf16 LoRA step of one Llama layer: 350 s capped,
/// 2 s with <c>ONEDNN_MAX_CPU_ISA=ALL</c>), so loading a half-precision model on the CPU under this cap warns.
/// </remarks>
internal static class OneDnnIsa
{
    /// <summary>The variable oneDNN reads (older releases read <c>DNNL_MAX_CPU_ISA</c>).</summary>
    internal const string Variable = "ONEDNN_MAX_CPU_ISA";

#pragma warning disable CA2255 // A library module initializer, on purpose: it must run before any TorchSharp convolution does.
    [ModuleInitializer]
#pragma warning restore CA2255
    internal static void CapBeforeFirstUse()
    {
        if (!OperatingSystem.IsLinux() || RuntimeInformation.ProcessArchitecture != Architecture.X64) return;
        if (Environment.GetEnvironmentVariable(Variable) is not null || Environment.GetEnvironmentVariable("DNNL_MAX_CPU_ISA") is not null) return;
        SetNative(Variable, "AVX2");
    }

    private static void SetNative(string name, string value)
    {
        // overwrite 0: a value set natively by the host since start-up wins.
        _ = setenv(name, value, 0);
        Environment.SetEnvironmentVariable(name, value);
    }

#pragma warning disable IDE1006, SYSLIB1054 // the POSIX name; plain DllImport keeps unsafe code off
    [DllImport("libc", CharSet = CharSet.Ansi, BestFitMapping = false)]
    private static extern int setenv(string name, string value, int overwrite);
#pragma warning restore IDE1006, SYSLIB1054
}
