// Timing helpers shared by the workloads: medians of interleaved rounds (so that load from the other processes on
// this shared machine hits every variant alike), the load average, peak RSS and managed allocations.
using System.Diagnostics;
using System.Text.Json;
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
}
