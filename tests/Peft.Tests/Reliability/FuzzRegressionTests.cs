using Peft.Checkpoints;
using Peft.Modeling;
using Peft.Tests.Checkpoints;

namespace Peft.Tests.Reliability;

/// <summary>
/// Every input the fuzz harness (fuzz/Peft.Fuzz, docs/RELIABILITY.md) keeps — its seeds, and the inputs of fuzz/regressions
/// that found new paths or crashes — read through the same readers, in the default suite: each loads or ends in the
/// reader's typed error, never another exception.
/// </summary>
public class FuzzRegressionTests
{
    private static readonly string FuzzRoot = System.IO.Path.GetFullPath(System.IO.Path.Combine(Fixtures.Root, "..", "..", "..", "fuzz"));

    public static TheoryData<string> Inputs(string target)
    {
        var data = new TheoryData<string>();
        foreach (var folder in new[] { "corpus", "regressions" })
        {
            var directory = System.IO.Path.Combine(FuzzRoot, folder, target);
            if (!Directory.Exists(directory)) continue;
            foreach (var file in Directory.GetFiles(directory).Order()) data.Add(System.IO.Path.GetRelativePath(FuzzRoot, file));
        }
        return data;
    }

    public static TheoryData<string> SafeTensorsInputs() => Inputs("safetensors");

    public static TheoryData<string> AdapterConfigInputs() => Inputs("adapter-config");

    public static TheoryData<string> ModelConfigInputs() => Inputs("model-config");

    [Theory]
    [MemberData(nameof(SafeTensorsInputs))]
    public void ASafeTensorsInputLoadsOrIsACheckpointError(string input)
    {
        using var scratch = new ScratchDirectory();
        var path = scratch.File("model.safetensors");
        File.Copy(System.IO.Path.Combine(FuzzRoot, input), path);
        try
        {
            SafeTensors.ReadHeader(path);
            foreach (var tensor in SafeTensors.Load(path).Values) tensor.Dispose();
        }
        catch (CheckpointException e)
        {
            Assert.Contains(path, e.Message, StringComparison.Ordinal);
        }
    }

    [Theory]
    [MemberData(nameof(AdapterConfigInputs))]
    public void AnAdapterConfigInputParsesOrIsAConfigError(string input)
    {
        using var scratch = new ScratchDirectory();
        File.Copy(System.IO.Path.Combine(FuzzRoot, input), scratch.File("adapter_config.json"));
        try
        {
            PeftModels.Default.ReadAdapterConfig(scratch.Path).Validate();
        }
        catch (PeftConfigException)
        {
        }
    }

    [Theory]
    [MemberData(nameof(ModelConfigInputs))]
    public void AModelConfigInputParsesOrIsAConfigError(string input)
    {
        using var scratch = new ScratchDirectory();
        File.Copy(System.IO.Path.Combine(FuzzRoot, input), scratch.File("config.json"));
        try
        {
            PeftModels.Default.ReadConfig(scratch.Path);
        }
        catch (ModelConfigException e)
        {
            Assert.Contains("config.json", e.Message, StringComparison.Ordinal);
        }
    }
}
