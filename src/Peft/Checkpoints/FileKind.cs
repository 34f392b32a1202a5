using System.Runtime.InteropServices;

namespace Peft.Checkpoints;

/// <summary>
/// Tells a regular file from a FIFO, socket or device before anything opens it: opening a FIFO for
/// reading blocks until a writer appears, so a <c>model.safetensors</c> that is a FIFO would hang
/// the loader forever.
/// </summary>
/// <remarks>
/// .NET reports every non-directory as <see cref="FileAttributes.Normal"/>, so on Linux the type comes
/// from <c>statx</c>, whose layout is the same on every architecture (<c>stx_mode</c> at byte 28).
/// Elsewhere the size stands in: FIFOs, sockets and devices report 0 bytes, which no checkpoint has.
/// </remarks>
internal static class FileKind
{
    private const int AtFdCwd = -100;
    private const uint StatxType = 0x1;
    private const int ModeOffset = 28;
    private const int TypeMask = 0xF000;
    private const int Regular = 0x8000;

    /// <summary>Whether <paramref name="path"/> (after symbolic links) is a regular file; null when it cannot be told.</summary>
    public static bool? IsRegularFile(string path)
    {
        if (OperatingSystem.IsLinux())
        {
            try
            {
                var buffer = new byte[256];
                if (Statx(AtFdCwd, path, 0, StatxType, buffer) == 0)
                {
                    return (BitConverter.ToUInt16(buffer, ModeOffset) & TypeMask) == Regular;
                }
            }
            catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
            {
                // An old C library without statx: fall through to the size test.
            }
        }
        var info = new FileInfo(path);
        return info.Exists ? info.Length > 0 : null;
    }

    /// <summary>Throws unless <paramref name="path"/> is a regular file (a missing file is the caller's to report).</summary>
    /// <exception cref="CheckpointException">The path is a FIFO, socket or device.</exception>
    public static void EnsureRegularFile(string path)
    {
        if (IsRegularFile(path) == false)
        {
            throw new CheckpointException(path, null, "is not a regular file (a FIFO, socket or device, or empty); it is refused before it is opened.");
        }
    }

    [DllImport("libc", EntryPoint = "statx", CharSet = CharSet.Ansi, BestFitMapping = false)]
    private static extern int Statx(int directoryFd, string path, int flags, uint mask, [Out] byte[] buffer);
}
