using System.Runtime.CompilerServices;
using System.Text;
using System.Text.RegularExpressions;
using ApprovalTests;
using ApprovalTests.Core;

namespace Peft.Generators.Tests;

/// <summary>
/// Received/approved snapshots with ApprovalTests. A run writes <c>Snapshots/Class.Test.received.cs</c>;
/// when it differs from <c>Class.Test.approved.cs</c> the test fails with a line diff. To approve,
/// rename the received file to approved (see docs/GENERATOR.md).
/// </summary>
internal static partial class Snapshot
{
    /// <summary>Compares <paramref name="source"/>, version strings scrubbed, with the approved file for the calling test.</summary>
    public static void Verify(string source, [CallerFilePath] string testFile = "", [CallerMemberName] string testName = "")
    {
        var className = Path.GetFileNameWithoutExtension(testFile);
        var namer = new SnapshotNamer(Path.Combine(Path.GetDirectoryName(testFile)!, "Snapshots"), $"{className}.{testName}");
        Approvals.Verify(new SnapshotWriter(Scrub(source)), namer, new LineDiffReporter());
    }

    /// <summary>Replaces the generator's version in [GeneratedCode], which changes every release.</summary>
    public static string Scrub(string source) => VersionPattern().Replace(source, "$1<version>$2");

    [GeneratedRegex("""(GeneratedCode\("Peft\.Generators", ")[^"]*("\))""")]
    private static partial Regex VersionPattern();

    /// <summary>Writes <c>.received.cs</c> files as UTF-8 without a byte order mark, with \n line ends.</summary>
    private sealed class SnapshotWriter(string text) : IApprovalWriter
    {
        public string GetApprovalFilename(string baseName) => baseName + ".approved.cs";

        public string GetReceivedFilename(string baseName) => baseName + ".received.cs";

        public string WriteReceivedFile(string received)
        {
            Directory.CreateDirectory(Path.GetDirectoryName(received)!);
            File.WriteAllText(received, text.ReplaceLineEndings("\n"), new UTF8Encoding(encoderShouldEmitUTF8Identifier: false));
            return received;
        }
    }

    /// <summary>Names snapshot files after the test, beside its source; no stack walking.</summary>
    private sealed class SnapshotNamer(string sourcePath, string name) : IApprovalNamer
    {
        public string SourcePath { get; } = sourcePath;

        public string Name { get; } = name;
    }
}

/// <summary>Fails the test with a line diff of approved against received (or the whole received text when nothing is approved yet).</summary>
internal sealed class LineDiffReporter : IApprovalFailureReporter
{
    public void Report(string approved, string received)
    {
        var receivedLines = File.ReadAllLines(received);
        if (!File.Exists(approved))
        {
            throw new Xunit.Sdk.XunitException(
                $"No approved snapshot {Path.GetFileName(approved)}. If the received file is right, rename it:\n" +
                $"  mv {received} {approved}\n\n" + string.Join("\n", receivedLines));
        }

        var message = new StringBuilder()
            .AppendLine($"Snapshot differs from {Path.GetFileName(approved)} (- approved, + received). If the change is intended:")
            .AppendLine($"  mv {received} {approved}");
        var diff = Diff(File.ReadAllLines(approved), receivedLines).ToList();
        var shown = -1;
        for (var i = 0; i < diff.Count; i++)
        {
            // Changed lines with three lines of context around each.
            var near = Enumerable.Range(Math.Max(0, i - 3), Math.Min(diff.Count, i + 4) - Math.Max(0, i - 3)).Any(j => diff[j][0] != ' ');
            if (!near)
            {
                continue;
            }

            if (shown >= 0 && i > shown + 1)
            {
                message.AppendLine("@@");
            }

            message.AppendLine(diff[i]);
            shown = i;
        }

        throw new Xunit.Sdk.XunitException(message.ToString());
    }

    /// <summary>A longest-common-subsequence line diff: unchanged lines start with a space.</summary>
    internal static IEnumerable<string> Diff(string[] before, string[] after)
    {
        var common = new int[before.Length + 1, after.Length + 1];
        for (var i = before.Length - 1; i >= 0; i--)
        {
            for (var j = after.Length - 1; j >= 0; j--)
            {
                common[i, j] = before[i] == after[j] ? common[i + 1, j + 1] + 1 : Math.Max(common[i + 1, j], common[i, j + 1]);
            }
        }

        int a = 0, b = 0;
        while (a < before.Length || b < after.Length)
        {
            if (a < before.Length && b < after.Length && before[a] == after[b])
            {
                yield return "  " + before[a++];
                b++;
            }
            else if (a < before.Length && (b == after.Length || common[a + 1, b] >= common[a, b + 1]))
            {
                yield return "- " + before[a++];
            }
            else
            {
                yield return "+ " + after[b++];
            }
        }
    }
}
