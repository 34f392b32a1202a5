using System.Runtime.InteropServices;

namespace Peft.Checkpoints;

/// <summary>
/// Replaces a folder's content so that a reader, or a process killed at any moment, sees either
/// the old content or the new, never a mix: adapters, trainer checkpoints and merged models are
/// saved through it.
/// </summary>
/// <remarks>
/// The new content is written into a sibling staging folder (<c>.NAME.tmp-*</c>), every file is
/// fsynced, entries of the old folder that the new content does not replace are carried over (other
/// adapters' sub-folders, tokenizer files: hard links where the file system has them, so a large
/// neighbour costs nothing; files are never rewritten in place, so sharing them is safe), and the two folders are then exchanged in one step:
/// <c>renameat2(RENAME_EXCHANGE)</c> on Linux. Elsewhere the old folder is first renamed aside
/// (<c>.NAME.old-*</c>); a kill between the two renames leaves it there, and <see cref="Recover"/>
/// (called by every save, and by loaders) puts it back. Stale staging folders of killed saves are
/// removed by the next save.
/// </remarks>
public static class AtomicDirectory
{
    private const string StagingMarker = ".tmp-";
    private const string AsideMarker = ".old-";

    /// <summary>Writes <paramref name="directory"/>'s new content through <paramref name="write"/>, atomically.</summary>
    /// <param name="directory">The folder to create or replace.</param>
    /// <param name="write">Writes the new content into the staging folder it is given.</param>
    /// <exception cref="IOException">The folder cannot be written or swapped in.</exception>
    public static void Write(string directory, Action<string> write)
    {
        ArgumentNullException.ThrowIfNull(directory);
        ArgumentNullException.ThrowIfNull(write);
        var target = Path.TrimEndingDirectorySeparator(Path.GetFullPath(directory));
        var parent = Path.GetDirectoryName(target) ?? throw new IOException($"{directory}: a root folder cannot be replaced.");
        Directory.CreateDirectory(parent);
        Recover(target);
        RemoveStale(target);

        var staging = Sibling(target, StagingMarker);
        Directory.CreateDirectory(staging);
        try
        {
            write(staging);
            if (Directory.Exists(target)) CopyMissing(target, staging);
            SyncTree(staging);
            Swap(staging, target);
        }
        finally
        {
            if (Directory.Exists(staging)) Directory.Delete(staging, recursive: true);
        }
        Native.SyncDirectory(parent);
    }

    /// <summary>
    /// Puts back a folder that a save killed between its two renames left aside (only where the
    /// folders cannot be exchanged in one step); does nothing otherwise.
    /// </summary>
    /// <param name="directory">The folder a save was replacing.</param>
    public static void Recover(string directory)
    {
        ArgumentNullException.ThrowIfNull(directory);
        var target = Path.TrimEndingDirectorySeparator(Path.GetFullPath(directory));
        if (Directory.Exists(target)) return;
        var aside = Siblings(target, AsideMarker).OrderByDescending(Directory.GetLastWriteTimeUtc).FirstOrDefault();
        if (aside is not null) Directory.Move(aside, target);
    }

    private static void Swap(string staging, string target)
    {
        if (!Directory.Exists(target))
        {
            Directory.Move(staging, target);
        }
        else if (!Native.Exchange(staging, target))
        {
            var aside = Sibling(target, AsideMarker);
            Directory.Move(target, aside);
            Directory.Move(staging, target);
            Directory.Delete(aside, recursive: true);
        }
        // After an exchange the staging path holds the old content; the caller deletes it.
    }

    private static void CopyMissing(string from, string to)
    {
        foreach (var entry in new DirectoryInfo(from).EnumerateFileSystemInfos())
        {
            var destination = Path.Combine(to, entry.Name);
            if (File.Exists(destination) || Directory.Exists(destination)) continue;
            if (entry is DirectoryInfo folder)
            {
                Directory.CreateDirectory(destination);
                CopyMissing(folder.FullName, destination);
            }
            else if (!Native.HardLink(entry.FullName, destination))
            {
                File.Copy(entry.FullName, destination);
            }
        }
    }

    private static void SyncTree(string folder)
    {
        foreach (var file in Directory.EnumerateFiles(folder, "*", SearchOption.AllDirectories)) Native.SyncFile(file);
        foreach (var sub in Directory.EnumerateDirectories(folder, "*", SearchOption.AllDirectories)) Native.SyncDirectory(sub);
        Native.SyncDirectory(folder);
    }

    private static void RemoveStale(string target)
    {
        foreach (var stale in Siblings(target, StagingMarker).Concat(Siblings(target, AsideMarker)))
        {
            try
            {
                Directory.Delete(stale, recursive: true);
            }
            catch (IOException)
            {
                // Another save may be using it right now; the next save tries again.
            }
        }
    }

    private static string Sibling(string target, string marker) =>
        Path.Combine(Path.GetDirectoryName(target)!, $".{Path.GetFileName(target)}{marker}{Guid.NewGuid():N}");

    private static IEnumerable<string> Siblings(string target, string marker)
    {
        var parent = Path.GetDirectoryName(target)!;
        return Directory.Exists(parent)
            ? Directory.EnumerateDirectories(parent, $".{Path.GetFileName(target)}{marker}*")
            : [];
    }

    /// <summary>The few POSIX calls .NET does not expose: fsync of files and folders, and renameat2.</summary>
    private static class Native
    {
        private const int AtFdCwd = -100;
        private const uint RenameExchange = 2;
        private const int ReadOnlyDirectory = 0x10000; // O_RDONLY | O_DIRECTORY on Linux

        public static void SyncFile(string path)
        {
            using var handle = File.OpenHandle(path, FileMode.Open, FileAccess.ReadWrite);
            using var stream = new FileStream(handle, FileAccess.ReadWrite);
            stream.Flush(flushToDisk: true);
        }

        public static void SyncDirectory(string path)
        {
            if (!OperatingSystem.IsLinux()) return;
            var fd = open(path, ReadOnlyDirectory);
            if (fd < 0) return;
            fsync(fd);
            close(fd);
        }

        /// <summary>A second name for a file; false where links cannot be made (then the caller copies).</summary>
        public static bool HardLink(string existing, string name)
        {
            if (!OperatingSystem.IsLinux()) return false;
            try
            {
                return link(existing, name) == 0;
            }
            catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
            {
                return false;
            }
        }

        /// <summary>Exchanges two folders in one step; false where the system cannot.</summary>
        public static bool Exchange(string a, string b)
        {
            if (!OperatingSystem.IsLinux()) return false;
            try
            {
                if (renameat2(AtFdCwd, a, AtFdCwd, b, RenameExchange) == 0) return true;
            }
            catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
            {
                return false;
            }
            var errno = Marshal.GetLastPInvokeError();
            // EINVAL / ENOSYS: a file system or kernel without RENAME_EXCHANGE; fall back.
            if (errno is 22 or 38) return false;
            throw new IOException($"{b}: cannot swap in the new content (errno {errno}).");
        }

#pragma warning disable IDE1006, SYSLIB1054 // POSIX names; plain DllImport keeps unsafe code off
        [DllImport("libc", SetLastError = true, CharSet = CharSet.Ansi, BestFitMapping = false)]
        private static extern int renameat2(int oldDirectory, string oldPath, int newDirectory, string newPath, uint flags);

        [DllImport("libc", SetLastError = true, CharSet = CharSet.Ansi, BestFitMapping = false)]
        private static extern int link(string existing, string name);

        [DllImport("libc", SetLastError = true, CharSet = CharSet.Ansi, BestFitMapping = false)]
        private static extern int open(string path, int flags);

        [DllImport("libc", SetLastError = true)]
        private static extern int fsync(int fd);

        [DllImport("libc", SetLastError = true)]
        private static extern int close(int fd);
#pragma warning restore IDE1006, SYSLIB1054
    }
}
