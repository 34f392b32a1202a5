using Peft;
using Peft.Checkpoints;
using Peft.Modeling;
using SharpFuzz;

namespace Peft.Fuzz;

/// <summary>
/// Fuzz targets for the readers of untrusted files: a safetensors file (header and data), an adapter_config.json and a
/// config.json. Each input is written to a file (the readers take paths, and check the file's kind), then read; the
/// typed error of that reader is the expected outcome for a bad input, and any other exception is a finding.
/// </summary>
internal static class Program
{
    private static readonly string[] Targets = ["safetensors", "adapter-config", "model-config"];

    /// <summary><c>Peft.Fuzz TARGET</c> under afl-fuzz, or <c>Peft.Fuzz TARGET --replay PATH</c> to run saved inputs without it.</summary>
    public static int Main(string[] args)
    {
        if (args.Length is not (1 or 3) || !Targets.Contains(args[0]) || (args.Length == 3 && args[1] != "--replay"))
        {
            Console.Error.WriteLine($"usage: Peft.Fuzz {{{string.Join('|', Targets)}}} [--replay FILE_OR_DIRECTORY]");
            return 2;
        }
        // tmpfs when there is one: every execution writes its input.
        var root = Directory.Exists("/dev/shm") ? "/dev/shm" : Path.GetTempPath();
        var scratch = Directory.CreateDirectory(Path.Combine(root, $"peft-fuzz-{Environment.ProcessId}")).FullName;
        try
        {
            Action<byte[]> run = args[0] switch
            {
                "safetensors" => bytes => SafeTensorsTarget(scratch, bytes),
                "adapter-config" => bytes => AdapterConfigTarget(scratch, bytes),
                _ => bytes => ModelConfigTarget(scratch, bytes),
            };
            if (args.Length == 3) return Replay(args[2], run);
            Fuzzer.Run(stream =>
            {
                using var buffer = new MemoryStream();
                stream.CopyTo(buffer);
                run(buffer.ToArray());
            });
            return 0;
        }
        finally
        {
            Directory.Delete(scratch, recursive: true);
        }
    }

    private static void SafeTensorsTarget(string scratch, byte[] bytes)
    {
        var path = Path.Combine(scratch, "model.safetensors");
        File.WriteAllBytes(path, bytes);
        try
        {
            SafeTensors.ReadHeader(path);
            foreach (var tensor in SafeTensors.Load(path).Values) tensor.Dispose();
        }
        catch (CheckpointException)
        {
        }
    }

    private static void AdapterConfigTarget(string scratch, byte[] bytes)
    {
        File.WriteAllBytes(Path.Combine(scratch, "adapter_config.json"), bytes);
        try
        {
            PeftModels.Default.ReadAdapterConfig(scratch).Validate();
        }
        catch (PeftConfigException)
        {
        }
    }

    private static void ModelConfigTarget(string scratch, byte[] bytes)
    {
        File.WriteAllBytes(Path.Combine(scratch, "config.json"), bytes);
        try
        {
            PeftModels.Default.ReadConfig(scratch);
        }
        catch (ModelConfigException)
        {
        }
    }

    /// <summary>Runs each saved input (a crash AFL++ found, say) and prints the exceptions that are findings.</summary>
    private static int Replay(string path, Action<byte[]> run)
    {
        var files = Directory.Exists(path) ? Directory.GetFiles(path).Where(f => !f.EndsWith("README.txt", StringComparison.Ordinal)).Order().ToArray() : [path];
        var findings = 0;
        foreach (var file in files)
        {
            try
            {
                run(File.ReadAllBytes(file));
            }
            catch (Exception e)
            {
                findings++;
                Console.WriteLine($"{file}: {e.GetType().FullName}: {e.Message.Split('\n')[0]}");
                Console.WriteLine(string.Join('\n', (e.StackTrace ?? "").Split('\n').Take(6)));
            }
        }
        Console.WriteLine($"{files.Length} input(s), {findings} finding(s)");
        return findings == 0 ? 0 : 1;
    }
}
