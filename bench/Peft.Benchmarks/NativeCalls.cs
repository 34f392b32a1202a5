// Issue 20, "P/Invoke counts": the managed code's calls into TorchSharp's native library, counted by the LD_AUDIT
// library native/pinvoke_count.c when the benchmark runs under it (see that file for how and for the command); without
// it only the tensors created (Measure.TensorsCreatedSoFar), a lower bound, are printed.
using System.IO.MemoryMappedFiles;
using System.Text;

internal static class NativeCalls
{
    private const int MaxEntries = 4096, NameBytes = 56, EntryBytes = 8 + NameBytes, HeaderBytes = 16;
    private const ulong Magic = 0x746e756f63766e70UL;
    private static readonly MemoryMappedViewAccessor? Counters = Open();

    /// <summary>Whether this process runs under the counting library.</summary>
    public static bool Counting => Counters is not null;

    private static MemoryMappedViewAccessor? Open()
    {
        var path = $"/dev/shm/peft-pinvoke.{Environment.ProcessId}";
        if (!File.Exists(path)) return null;
        using var file = MemoryMappedFile.CreateFromFile(path, FileMode.Open, null, 0, MemoryMappedFileAccess.ReadWrite);
        var view = file.CreateViewAccessor(0, HeaderBytes + (long)MaxEntries * EntryBytes, MemoryMappedFileAccess.Read);
        // The mapping outlives the name: nothing is left in /dev/shm, whatever way the process ends.
        File.Delete(path);
        return view.ReadUInt64(0) == Magic ? view : null;
    }

    /// <summary>Every counted entry point's calls so far, by name.</summary>
    public static Dictionary<string, long> Snapshot()
    {
        var counts = new Dictionary<string, long>();
        if (Counters is not { } view) return counts;
        var used = (int)Math.Min(view.ReadUInt64(8), MaxEntries);
        var name = new byte[NameBytes];
        for (int i = 0; i < used; i++)
        {
            long at = HeaderBytes + (long)i * EntryBytes;
            view.ReadArray(at + 8, name, 0, NameBytes);
            var length = Array.IndexOf(name, (byte)0);
            counts[Encoding.ASCII.GetString(name, 0, length < 0 ? NameBytes : length)] = (long)view.ReadUInt64(at);
        }
        return counts;
    }

    /// <summary>
    /// Runs the finalizers of what is already garbage. The counts are the whole process's, the finalizer thread's too:
    /// a Scalar or Tensor left to the GC is disposed natively whenever its finalizer runs. Flushed before and after a
    /// counted call, the count holds the disposals that call left to the GC, not those of earlier calls.
    /// </summary>
    public static void FinalizePending()
    {
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();
    }

    /// <summary>Total native calls so far (0 when not counting).</summary>
    public static long Total() => Snapshot().Values.Sum();

    /// <summary>
    /// Counts each variant's tensors created (<see cref="Measure.TensorsCreatedSoFar"/>, always) and native calls (under the
    /// counting library only) in one call after a warm one, and adds them to <paramref name="result"/>:
    /// <c>tensors_created_per_{per}</c>, <c>native_calls_per_{per}</c> and the entry points called most
    /// (<c>native_calls_top_per_{per}</c>), by variant, and each ratio in <paramref name="ratios"/> as
    /// <c>{a}_over_{b}_tensors</c> and <c>{a}_over_{b}_native_calls</c>.
    /// </summary>
    public static void AddCounts(Dictionary<string, object> result, string per, (string A, string B)[] ratios, params (string Name, Action Run)[] variants)
    {
        var tensors = new Dictionary<string, long>();
        var calls = new Dictionary<string, long>();
        var tops = new Dictionary<string, Dictionary<string, long>>();
        foreach (var (name, run) in variants)
        {
            using (var warm = TorchSharp.torch.NewDisposeScope()) run();
            if (Counting) FinalizePending();
            var tensorsBefore = Measure.TensorsCreatedSoFar();
            var callsBefore = Snapshot();
            using (var scope = TorchSharp.torch.NewDisposeScope()) run();
            if (Counting) FinalizePending();
            var callsAfter = Snapshot();
            tensors[name] = Measure.TensorsCreatedSoFar() - tensorsBefore;
            if (!Counting) continue;
            var delta = callsAfter.Select(kv => (kv.Key, Calls: kv.Value - callsBefore.GetValueOrDefault(kv.Key))).Where(d => d.Calls > 0).ToList();
            calls[name] = delta.Sum(d => d.Calls);
            tops[name] = delta.OrderByDescending(d => d.Calls).Take(8).ToDictionary(d => d.Key, d => d.Calls);
        }
        result[$"tensors_created_per_{per}"] = tensors;
        foreach (var (a, b) in ratios) result[$"{a}_over_{b}_tensors"] = (double)tensors[a] / tensors[b];
        if (!Counting) return;
        result[$"native_calls_per_{per}"] = calls;
        result[$"native_calls_top_per_{per}"] = tops;
        foreach (var (a, b) in ratios) result[$"{a}_over_{b}_native_calls"] = (double)calls[a] / calls[b];
    }
}
