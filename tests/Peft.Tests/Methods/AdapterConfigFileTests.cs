using System.Text.Json;
using Peft.Modeling;
using Peft.Tests.Checkpoints;
using TorchSharp;

namespace Peft.Tests.Methods;

/// <summary>
/// An adapter the reference saved, loaded and saved again here, writes every adapter_config.json key the
/// reference wrote, with the same values (so Python reads it back as the same config).
/// </summary>
public class AdapterConfigFileTests
{
    [Theory]
    [InlineData("llama-clm-loha")]
    [InlineData("bert-seqcls-loha")]
    [InlineData("llama-clm-lokr")]
    [InlineData("gpt2-clm-vera")]
    [InlineData("llama-clm-vera")]
    [InlineData("gpt2-clm-fourierft")]
    [InlineData("llama-clm-fourierft")]
    [InlineData("llama-clm-oft")]
    [InlineData("llama-clm-boft")]
    public void ResavedConfigKeepsTheReferenceKeysAndValues(string caseName)
    {
        using var scope = torch.NewDisposeScope();
        using var scratch = new ScratchDirectory();
        var adapter = Fixtures.Path("cases", caseName, "adapter");
        using var meta = JsonDocument.Parse(File.ReadAllText(Fixtures.Path("cases", caseName, "meta.json")));
        var model = PeftModels.Default.LoadPretrained(
            Fixtures.Path(meta.RootElement.GetProperty("base_model_dir").GetString()!), new TaskType(meta.RootElement.GetProperty("task_type").GetString()!));
        PeftModels.Default.FromPretrained(model, adapter).SavePretrained(scratch.Path);

        using var reference = JsonDocument.Parse(File.ReadAllText(Path.Combine(adapter, "adapter_config.json")));
        using var ours = JsonDocument.Parse(File.ReadAllText(scratch.File("adapter_config.json")));
        foreach (var property in reference.RootElement.EnumerateObject())
        {
            // peft_version: ours names the format; inference_mode: loading sets it; base_model_name_or_path: the
            // reference's fixtures were made from in-memory models (null), ours come from a directory, which is recorded.
            if (property.Name is "peft_version" or "inference_mode" or "base_model_name_or_path") continue;
            Assert.True(ours.RootElement.TryGetProperty(property.Name, out var value), $"saved config lacks '{property.Name}'");
            Assert.True(JsonEquals(property.Value, value), $"'{property.Name}': ours {value.GetRawText()} vs the reference's {property.Value.GetRawText()}");
        }
    }

    /// <summary>Equal JSON, with numbers compared by value (8 and 8.0 alike) and lists as sets where the reference writes sets.</summary>
    private static bool JsonEquals(JsonElement a, JsonElement b) => (a.ValueKind, b.ValueKind) switch
    {
        (JsonValueKind.Number, JsonValueKind.Number) => a.GetDouble() == b.GetDouble(),
        (JsonValueKind.Array, JsonValueKind.Array) => a.EnumerateArray().Select(e => e.GetRawText()).Order().SequenceEqual(b.EnumerateArray().Select(e => e.GetRawText()).Order()),
        (JsonValueKind.Object, JsonValueKind.Object) => a.EnumerateObject().Count() == b.EnumerateObject().Count()
            && a.EnumerateObject().All(p => b.TryGetProperty(p.Name, out var q) && JsonEquals(p.Value, q)),
        _ => a.GetRawText() == b.GetRawText(),
    };
}
