using System;
using System.IO;
using System.Text;
using Microsoft.Build.Framework;
using Microsoft.Build.Utilities;

/// <summary>
/// Sets VER_FLG_WEAK on the Elf64_Vernaux entry named <see cref="VersionName"/> in the
/// .gnu.version_r section of each library, when the system libstdc++ does not provide it.
/// </summary>
public sealed class WeakenGlibcxxRequirement : Task
{
    [Required] public ITaskItem[] Libraries { get; set; } = Array.Empty<ITaskItem>();
    [Required] public string VersionName { get; set; } = "";

    private const uint ShtGnuVerneed = 0x6ffffffe;
    private const ushort VerFlagWeak = 0x2;

    public override bool Execute()
    {
        if (SystemProvides(VersionName))
        {
            Log.LogMessage(MessageImportance.Low, $"System libstdc++ provides {VersionName}; nothing to patch.");
            return true;
        }
        foreach (var item in Libraries)
        {
            var path = item.GetMetadata("FullPath");
            try
            {
                Patch(path);
            }
            catch (Exception e)
            {
                Log.LogError($"Could not weaken {VersionName} in {path}: {e.Message}");
            }
        }
        return !Log.HasLoggedErrors;
    }

    private static bool SystemProvides(string version)
    {
        string[] candidates =
        {
            "/usr/lib/x86_64-linux-gnu/libstdc++.so.6", "/usr/lib/aarch64-linux-gnu/libstdc++.so.6",
            "/usr/lib64/libstdc++.so.6", "/usr/lib/libstdc++.so.6", "/lib/x86_64-linux-gnu/libstdc++.so.6",
        };
        foreach (var candidate in candidates)
        {
            if (!File.Exists(candidate)) continue;
            var text = Encoding.ASCII.GetString(File.ReadAllBytes(candidate));
            return text.Contains(version + "\0");
        }
        return false; // no libstdc++ found where expected: patching is harmless
    }

    private void Patch(string path)
    {
        var bytes = File.ReadAllBytes(path);
        if (bytes.Length < 64 || bytes[0] != 0x7f || bytes[1] != (byte)'E' || bytes[4] != 2 || bytes[5] != 1)
            throw new InvalidDataException("not a little-endian ELF64 file");

        long sectionHeaders = (long)BitConverter.ToUInt64(bytes, 0x28);
        int entrySize = BitConverter.ToUInt16(bytes, 0x3A);
        int count = BitConverter.ToUInt16(bytes, 0x3C);
        for (int i = 0; i < count; i++)
        {
            long header = sectionHeaders + (long)i * entrySize;
            if (BitConverter.ToUInt32(bytes, (int)header + 4) != ShtGnuVerneed) continue;

            long offset = (long)BitConverter.ToUInt64(bytes, (int)header + 24);
            int linkedStrings = (int)BitConverter.ToUInt32(bytes, (int)header + 40);
            int needCount = (int)BitConverter.ToUInt32(bytes, (int)header + 44);
            long stringsHeader = sectionHeaders + (long)linkedStrings * entrySize;
            long strings = (long)BitConverter.ToUInt64(bytes, (int)stringsHeader + 24);

            long need = offset;
            for (int n = 0; n < needCount; n++)
            {
                int auxCount = BitConverter.ToUInt16(bytes, (int)need + 2);
                long aux = need + BitConverter.ToUInt32(bytes, (int)need + 8);
                for (int a = 0; a < auxCount; a++)
                {
                    ushort flags = BitConverter.ToUInt16(bytes, (int)aux + 4);
                    uint nameOffset = BitConverter.ToUInt32(bytes, (int)aux + 8);
                    if (ReadString(bytes, strings + nameOffset) == VersionName)
                    {
                        if ((flags & VerFlagWeak) != 0)
                        {
                            Log.LogMessage(MessageImportance.Low, $"{path}: {VersionName} already weak.");
                            return;
                        }
                        var patched = BitConverter.GetBytes((ushort)(flags | VerFlagWeak));
                        bytes[aux + 4] = patched[0];
                        bytes[aux + 5] = patched[1];
                        // Replace the directory entry rather than writing in place, so a hard link into the NuGet cache is never written through.
                        var temporary = path + ".weakening";
                        File.WriteAllBytes(temporary, bytes);
                        File.Delete(path);
                        File.Move(temporary, path);
                        Log.LogMessage(MessageImportance.Normal, $"{path}: marked {VersionName} weak.");
                        return;
                    }
                    aux += BitConverter.ToUInt32(bytes, (int)aux + 12);
                }
                need += BitConverter.ToUInt32(bytes, (int)need + 12);
            }
        }
        Log.LogMessage(MessageImportance.Low, $"{path}: no {VersionName} requirement.");
    }

    private static string ReadString(byte[] bytes, long start)
    {
        long end = start;
        while (bytes[end] != 0) end++;
        return Encoding.ASCII.GetString(bytes, (int)start, (int)(end - start));
    }
}
