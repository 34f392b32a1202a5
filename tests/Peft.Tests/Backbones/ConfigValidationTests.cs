using System.Text.Json;
using System.Text.Json.Nodes;
using Peft.Modeling;
using Peft.Tests.Checkpoints;

namespace Peft.Tests.Backbones;

/// <summary>
/// Every architecture validates its config.json where it is read (ModelConfig.Validate): an unknown
/// activation fails at parse time naming the file and the key, whichever architecture reads it.
/// </summary>
public class ConfigValidationTests
{
    public static TheoryData<string> ModelsWithAnActivation()
    {
        var data = new TheoryData<string>();
        foreach (var directory in Directory.GetDirectories(Fixtures.Path("models")).Order(StringComparer.Ordinal))
        {
            var json = File.ReadAllText(Path.Combine(directory, "config.json"));
            if (json.Contains("\"hidden_act\"", StringComparison.Ordinal) || json.Contains("\"activation_function\"", StringComparison.Ordinal)) data.Add(Path.GetFileName(directory));
        }
        return data;
    }

    [Theory]
    [MemberData(nameof(ModelsWithAnActivation))]
    public void AnUnknownActivationFailsWhenTheConfigIsRead(string model)
    {
        var config = JsonNode.Parse(File.ReadAllText(Fixtures.Path("models", model, "config.json")))!.AsObject();
        var key = config.ContainsKey("hidden_act") ? "hidden_act" : "activation_function";
        config[key] = "no_such_activation";
        using var document = JsonDocument.Parse(config.ToJsonString());
        var architecture = PeftRegistry.Default.Architecture(config["model_type"]!.GetValue<string>());

        var error = Assert.Throws<ModelConfigException>(() => architecture.ParseConfig(document.RootElement, "edited/config.json"));
        Assert.Contains("edited/config.json", error.Message);
        Assert.Contains($"'{key}'", error.Message);
    }

    [Fact]
    public void AnAdjustmentThatBreaksTheConfigFailsInTheLoader()
    {
        var error = Assert.Throws<ModelConfigException>(() => PeftModels.Default.LoadPretrained(
            Fixtures.Path("models", "gpt2-clm"), TaskType.CausalLM, c => ((Peft.Backbones.Gpt2.Gpt2Config)c) with { ActivationFunction = "no_such_activation" }));
        Assert.Contains("'activation_function'", error.Message);
    }
}
