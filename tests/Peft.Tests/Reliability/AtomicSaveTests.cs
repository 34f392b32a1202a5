using System.Diagnostics;
using Peft.Checkpoints;
using Peft.Tests.Checkpoints;

namespace Peft.Tests.Reliability;

/// <summary>
/// A save killed at any moment leaves the old adapter or the new one, byte for byte; never a mix,
/// never a folder that fails to load, and the next save removes what the killed one left behind.
/// </summary>
public class AtomicSaveTests
{
    private const int Kills = 24;

    [Fact]
    public async Task ASaveKilledAtRandomMomentsLeavesTheOldOrTheNewAdapter()
    {
        using var scratch = new ScratchDirectory();
        var model = Fixtures.Path("models", "gpt2-clm");
        var random = new Random(20261201);
        var delays = Enumerable.Range(0, Kills).Select(_ => TimeSpan.FromMilliseconds(random.Next(0, 400))).ToArray();
        var outcomes = new Dictionary<string, int>();
        // Four children at a time: each start costs about a second of TorchSharp loading.
        foreach (var wave in Enumerable.Range(0, Kills).Chunk(4))
        {
            var saves = await Task.WhenAll(wave.Select(t => RunAndKill(model, Trial(scratch, t), delays[t])));
            for (int i = 0; i < wave.Length; i++)
            {
                var outcome = Outcome(model, Trial(scratch, wave[i]), saves[i], wave[i]);
                outcomes[outcome] = outcomes.GetValueOrDefault(outcome) + 1;
            }
        }
        // Both adapters were seen, so the kills did land in the middle of alternating saves.
        Assert.True(outcomes.GetValueOrDefault("first") > 0 && outcomes.GetValueOrDefault("second") > 0, string.Join(", ", outcomes));

        // The next save cleans what killed saves left beside the folder.
        var last = Path.Combine(scratch.Path, "trial-0");
        SaveWorker.Adapter(model, rank: 2, alpha: 4, seed: 1).SavePretrained(Path.Combine(last, SaveWorker.Target));
        Assert.Empty(Directory.GetFileSystemEntries(last, "." + SaveWorker.Target + ".*"));
        Assert.True(SameFiles(Path.Combine(last, SaveWorker.First), Path.Combine(last, SaveWorker.Target)));
    }

    [Fact]
    public void OtherAdaptersAndFilesInTheFolderSurviveASave()
    {
        using var scratch = new ScratchDirectory();
        var folder = Path.Combine(scratch.Path, "adapters");
        Directory.CreateDirectory(Path.Combine(folder, "french"));
        File.WriteAllText(Path.Combine(folder, "french", "adapter_config.json"), "{}");
        File.WriteAllText(Path.Combine(folder, "README.md"), "notes");

        SaveWorker.Adapter(Fixtures.Path("models", "gpt2-clm"), rank: 2, alpha: 4, seed: 1).SavePretrained(folder);

        Assert.Equal("{}", File.ReadAllText(Path.Combine(folder, "french", "adapter_config.json")));
        Assert.Equal("notes", File.ReadAllText(Path.Combine(folder, "README.md")));
        Assert.True(File.Exists(Path.Combine(folder, "adapter_model.safetensors")));
        Assert.Empty(Directory.GetFileSystemEntries(scratch.Path, ".adapters.*"));
    }

    [Fact]
    public void AFolderLeftAsideBetweenTwoRenamesIsPutBack()
    {
        using var scratch = new ScratchDirectory();
        var folder = Path.Combine(scratch.Path, "adapter");
        var aside = Path.Combine(scratch.Path, ".adapter.old-0123");
        Directory.CreateDirectory(aside);
        File.WriteAllText(Path.Combine(aside, "adapter_config.json"), "old");

        AtomicDirectory.Recover(folder);

        Assert.Equal("old", File.ReadAllText(Path.Combine(folder, "adapter_config.json")));
        Assert.False(Directory.Exists(aside));
    }

    private static string Trial(ScratchDirectory scratch, int trial) => Path.Combine(scratch.Path, $"trial-{trial}");

    /// <summary>Which adapter the killed save left: it must be one of the two, and it must load.</summary>
    private static string Outcome(string model, string output, int saves, int trial)
    {
        var target = Path.Combine(output, SaveWorker.Target);
        if (!Directory.Exists(target))
        {
            Assert.True(saves == 0, $"trial {trial}: {saves} saves finished but the folder is gone");
            return "none yet";
        }
        var outcome = SameFiles(Path.Combine(output, SaveWorker.First), target) ? "first"
            : SameFiles(Path.Combine(output, SaveWorker.Second), target) ? "second"
            : throw new Xunit.Sdk.XunitException($"trial {trial}: the folder is neither adapter: {string.Join(", ", Describe(target))}");
        PeftModels.Default.FromPretrained(PeftModels.Default.LoadPretrained(model, TaskType.CausalLM), target).Dispose();
        return outcome;
    }

    private static async Task<int> RunAndKill(string model, string output, TimeSpan delay)
    {
        var start = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            UseShellExecute = false,
        };
        foreach (var argument in new[] { "exec", typeof(AtomicSaveTests).Assembly.Location, "save-worker", model, output }) start.ArgumentList.Add(argument);
        using var worker = Process.Start(start)!;
        var saved = 0;
        try
        {
            var line = await worker.StandardOutput.ReadLineAsync().WaitAsync(TimeSpan.FromSeconds(60));
            Assert.Equal(SaveWorker.Ready, line);
            var reading = Task.Run(async () =>
            {
                while (await worker.StandardOutput.ReadLineAsync() is { } next)
                {
                    if (next.StartsWith("saved", StringComparison.Ordinal)) Interlocked.Increment(ref saved);
                }
            });
            await Task.Delay(delay);
        }
        finally
        {
            worker.Kill(entireProcessTree: true);
            await worker.WaitForExitAsync();
        }
        return saved;
    }

    private static bool SameFiles(string expected, string actual)
    {
        var names = Relative(expected);
        return names.SequenceEqual(Relative(actual))
            && names.All(n => File.ReadAllBytes(Path.Combine(expected, n)).AsSpan().SequenceEqual(File.ReadAllBytes(Path.Combine(actual, n))));
    }

    private static List<string> Relative(string folder) =>
        [.. Directory.EnumerateFiles(folder, "*", SearchOption.AllDirectories).Select(f => Path.GetRelativePath(folder, f)).Order(StringComparer.Ordinal)];

    private static IEnumerable<string> Describe(string folder) =>
        Directory.EnumerateFiles(folder, "*", SearchOption.AllDirectories).Select(f => $"{Path.GetRelativePath(folder, f)} ({new FileInfo(f).Length} B)");
}
