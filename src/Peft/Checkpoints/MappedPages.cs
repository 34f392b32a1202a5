using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using TorchSharp;

namespace Peft.Checkpoints;

/// <summary>
/// Brings the pages of a tensor that views a memory-mapped file into the process in one go, instead of one page fault
/// per page (or per fault-around block) on first use.
/// </summary>
/// <remarks>
/// On Linux ≥ 5.14 this is <c>madvise(MADV_POPULATE_READ)</c> over the tensor's page-aligned range: the kernel maps
/// every page in one call, reading from the disk what the page cache lacks. Where that is unavailable (another OS, or an
/// older kernel, which answers <c>EINVAL</c>) or fails, one byte of every page is read instead: the same pages end up
/// resident, through faults. Either way the values are the file's: reading a private mapping copies nothing.
/// </remarks>
internal static class MappedPages
{
    // MADV_POPULATE_READ (include/uapi/asm-generic/mman-common.h, Linux 5.14).
    private const int PopulateRead = 22;
    private const int InvalidArgument = 22;
    private const int NoSuchCall = 38;

    private const long ChunkBytes = 1L << 30;

    // Set once the kernel refuses the advice, so later tensors go straight to the fallback.
    private static volatile bool PopulateRefused = !OperatingSystem.IsLinux();

    /// <summary>Makes every page of <paramref name="tensor"/> (contiguous, on the CPU) resident.</summary>
    /// <param name="tensor">The tensor, typically a view of a mapped file.</param>
    /// <param name="chunkBytes">How much goes to the kernel per call (TorchSharp's spans end at 2 GiB).</param>
    /// <param name="advise">False: read every page, never asking the kernel (the fallback alone).</param>
    /// <returns>Whether the kernel populated every page in bulk; false when they were read one by one.</returns>
    public static bool Populate(torch.Tensor tensor, long chunkBytes = ChunkBytes, bool advise = true)
    {
        var elements = tensor.numel();
        if (elements == 0) return true;
        using var flat = tensor.flatten();
        var perChunk = Math.Max(1, chunkBytes / tensor.element_size());
        var bulk = true;
        for (long start = 0; start < elements; start += perChunk)
        {
            using var chunk = flat.narrow(0, start, Math.Min(perChunk, elements - start));
            var span = chunk.bytes;
            if (advise && Advise(span)) continue;
            Touch(span);
            bulk = false;
        }
        return bulk;
    }

    private static bool Advise(Span<byte> span)
    {
        if (PopulateRefused) return false;
        // The span's address, without unsafe code: its distance from address zero.
        var address = Unsafe.ByteOffset(ref Unsafe.NullRef<byte>(), ref MemoryMarshal.GetReference(span));
        var aligned = address & ~(nint)(Environment.SystemPageSize - 1);
        if (madvise(aligned, (nuint)(address - aligned + span.Length), PopulateRead) == 0) return true;
        if (Marshal.GetLastPInvokeError() is InvalidArgument or NoSuchCall) PopulateRefused = true;
        return false;
    }

    private static void Touch(ReadOnlySpan<byte> span)
    {
        var page = Environment.SystemPageSize;
        var sum = 0;
        for (var i = 0; i < span.Length; i += page) sum += span[i];
        if (span.Length > 0) sum += span[^1];
        Sink = sum;
    }

    // Written so that the JIT keeps the reads that fault the pages in.
    private static volatile int Sink;

#pragma warning disable IDE1006, SYSLIB1054 // the POSIX name; plain DllImport keeps unsafe code off (blittable arguments)
    [DllImport("libc", SetLastError = true)]
    private static extern int madvise(nint address, nuint length, int advice);
#pragma warning restore IDE1006, SYSLIB1054
}
