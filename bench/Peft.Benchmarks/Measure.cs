// Timing helpers shared by the workloads: medians of interleaved rounds (so that load from the other processes on
// this shared machine hits every variant alike), the load average, peak RSS and managed allocations, native heap bytes
// and the tensors TorchSharp creates (a lower bound on native calls).
using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text.Json;
using Peft.Methods.Lora;
using TorchSharp;
using static TorchSharp.torch;

internal static class Measure
{
    /// <summary>Medians (see <see cref="Interleaved"/>) and minimums, by variant.</summary>
    /// <remarks>
    /// <c>Cpu</c> is the median of the process's CPU milliseconds (user + system) per call: on a loaded machine the
    /// work itself, without the waiting for a core that wall time includes (with one thread it is the better figure).
    /// </remarks>
    public sealed record Times(Dictionary<string, double> Median, Dictionary<string, double> Min, Dictionary<string, double> Cpu)
    {
        /// <summary>The median by default: what the issue asks for.</summary>
        public double this[string name] => Median[name];
    }

    /// <summary>
    /// Runs every variant once per round, <paramref name="rounds"/> rounds after <paramref name="warm"/> unrecorded
    /// ones, and returns each variant's median milliseconds. Interleaving makes the ratios of one run comparable.
    /// </summary>
    public static Times Interleaved(int warm, int rounds, params (string Name, Action Run)[] variants)
    {
        var times = variants.ToDictionary(v => v.Name, _ => new List<double>());
        var cpu = variants.ToDictionary(v => v.Name, _ => new List<double>());
        var process = Process.GetCurrentProcess();
        for (int round = 0; round < warm + rounds; round++)
        {
            foreach (var (name, run) in variants)
            {
                process.Refresh();
                var cpuBefore = process.TotalProcessorTime;
                var clock = Stopwatch.StartNew();
                using (var scope = NewDisposeScope()) run();
                clock.Stop();
                process.Refresh();
                if (round < warm) continue;
                times[name].Add(clock.Elapsed.TotalMilliseconds);
                cpu[name].Add((process.TotalProcessorTime - cpuBefore).TotalMilliseconds);
            }
        }
        return new(times.ToDictionary(kv => kv.Key, kv => Median(kv.Value)), times.ToDictionary(kv => kv.Key, kv => kv.Value.Min()), cpu.ToDictionary(kv => kv.Key, kv => Median(kv.Value)));
    }

    /// <summary>Managed bytes one call of <paramref name="run"/> allocates (after a warm call).</summary>
    public static long AllocatedBytes(Action run)
    {
        using (var warm = NewDisposeScope()) run();
        var before = GC.GetAllocatedBytesForCurrentThread();
        using (var scope = NewDisposeScope()) run();
        return GC.GetAllocatedBytesForCurrentThread() - before;
    }

    /// <summary>
    /// Every tensor TorchSharp has wrapped on this thread so far, in dispose scopes or not: the difference over a call
    /// is a lower bound on that call's native calls.
    /// </summary>
    /// <remarks>
    /// TorchSharp counts no P/Invokes (native/pinvoke_count.c does, see NativeCalls.cs). What it does count (its
    /// dispose-scope statistics, per thread) is every managed Tensor it wraps around a native handle, and each of those
    /// is the result of at least one native call (an op, a view, a factory). Calls that return no tensor (shape and
    /// dtype queries, scalars, in-place ops, <c>backward</c>, the optimizer's per-parameter calls, disposing) are not
    /// counted, nor is the work libtorch does inside one call (autograd's backward ops run natively and create no
    /// managed tensors).
    /// </remarks>
    public static long TensorsCreatedSoFar()
    {
        var statistics = DisposeScopeManager.Statistics.TensorStatistics;
        return statistics.CreatedInScopeCount + statistics.CreatedOutsideScopeCount;
    }

    /// <summary>
    /// Bytes the C heap has handed out and not taken back (glibc's <c>mallinfo2</c>: arena bytes in use plus mmapped
    /// chunks), NaN off Linux. libtorch's CPU allocator takes tensor storage from it; the .NET GC heap is not in it.
    /// Unlike RSS it drops when a tensor is freed, so it shows what a step holds at each point.
    /// </summary>
    public static double NativeHeapBytes()
    {
        if (!OperatingSystem.IsLinux()) return double.NaN;
        var info = MallInfo2();
        return (double)(info.uordblks + info.hblkhd);
    }

    /// <summary>
    /// Bytes the C heap holds free (glibc's <c>fordblks</c>): freed by libtorch but kept by the allocator, so still in
    /// RSS. NaN off Linux. The gap between RSS and what is in use.
    /// </summary>
    public static double NativeHeapFreeBytes() => OperatingSystem.IsLinux() ? (double)MallInfo2().fordblks : double.NaN;

    // struct mallinfo2 (glibc >= 2.33): ten size_t fields, in this order.
    [StructLayout(LayoutKind.Sequential)]
    private struct MallInfo
    {
        public nuint arena, ordblks, smblks, hblks, hblkhd, usmblks, fsmblks, uordblks, fordblks, keepcost;
    }

    [DllImport("libc.so.6", EntryPoint = "mallinfo2")]
    private static extern MallInfo MallInfo2();

    /// <summary>
    /// Runs <paramref name="run"/> while another thread samples <see cref="NativeHeapBytes"/> about every
    /// millisecond, and returns the highest sample: the native peak of a step, which falls inside backward, where no
    /// mark between phases can see it. For untimed steps only (each sample takes the heap's locks).
    /// </summary>
    public static double NativeHeapPeak(Action run)
    {
        var peak = NativeHeapBytes();
        var done = false;
        var sampler = new Thread(() =>
        {
            while (!Volatile.Read(ref done))
            {
                var now = NativeHeapBytes();
                if (now > peak) peak = now;
                Thread.Sleep(1);
            }
        });
        sampler.Start();
        try { run(); }
        finally
        {
            Volatile.Write(ref done, true);
            sampler.Join();
        }
        return Math.Max(peak, NativeHeapBytes());
    }

    public static double Median(List<double> values)
    {
        var sorted = values.Order().ToList();
        return sorted.Count % 2 == 1 ? sorted[sorted.Count / 2] : (sorted[sorted.Count / 2 - 1] + sorted[sorted.Count / 2]) / 2;
    }

    /// <summary>The 1-minute load average: on this shared 2-core machine, the figures mean little without it.</summary>
    public static double LoadAverage() =>
        File.Exists("/proc/loadavg") ? double.Parse(File.ReadAllText("/proc/loadavg").Split(' ')[0], System.Globalization.CultureInfo.InvariantCulture) : double.NaN;

    /// <summary>VmHWM (peak resident set) or VmRSS from /proc/self/status, in bytes.</summary>
    public static double Memory(string field = "VmHWM")
    {
        var line = File.ReadLines("/proc/self/status").First(l => l.StartsWith(field + ":", StringComparison.Ordinal));
        return long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1]) * 1024.0;
    }

    /// <summary>Runs this executable as <c>--child name</c> and returns the JSON object it prints last.</summary>
    public static Dictionary<string, double> Child(params string[] arguments)
    {
        // Started as `dotnet Peft.Benchmarks.dll`, the process path is the host's: hand it the assembly again.
        var host = Environment.ProcessPath!;
        string[] prefix = Path.GetFileNameWithoutExtension(host) == "dotnet" ? [typeof(Measure).Assembly.Location] : [];
        var start = new ProcessStartInfo(host, [.. prefix, "--child", .. arguments]) { RedirectStandardOutput = true };
        using var process = Process.Start(start)!;
        var output = process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        if (process.ExitCode != 0) throw new InvalidOperationException($"child '{string.Join(' ', arguments)}' exited with {process.ExitCode}: {output}");
        return JsonSerializer.Deserialize<Dictionary<string, double>>(output.Trim().Split('\n')[^1])!;
    }

    /// <summary>Runs <paramref name="body"/> with the fused update off (the general path), then turns it back on.</summary>
    internal static void Unfused(Action body)
    {
        LoraLayer.FusedUpdate = false;
        try { body(); }
        finally { LoraLayer.FusedUpdate = true; }
    }
}
