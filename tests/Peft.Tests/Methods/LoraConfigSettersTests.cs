using System.Text.Json;
using System.Text.Json.Nodes;
using Peft.Methods.Lora;
using Peft.Tests.Checkpoints;
using Peft.Tuners;

namespace Peft.Tests.Methods;

/// <summary>C#-shaped setters of LoraConfig keep adapter_config.json's shape on disk.</summary>
public class LoraConfigSettersTests
{
    [Fact]
    public void Targets_and_init_take_arrays_strings_booleans_and_the_enum()
    {
        var names = new LoraConfig { TargetModules = new[] { "q", "v" }, InitLoraWeights = "gaussian" };
        var allLinear = new LoraConfig { TargetModules = "all-linear", InitLoraWeights = false };
        var pattern = new LoraConfig { TargetModules = @".*\.(q|v)_proj", InitLoraWeights = LoraInit.Gaussian };

        Assert.Equal(["q", "v"], names.TargetModules!.Names!);
        Assert.Equal(LoraInit.Gaussian, names.Init);
        Assert.True(allLinear.TargetModules!.IsAllLinear);
        Assert.Equal(LoraInit.Random, allLinear.Init);
        Assert.True(pattern.TargetModules!.Matches("model.layers.0.self_attn.q_proj"));
        Assert.False(pattern.TargetModules.Matches("model.layers.0.self_attn.k_proj"));
        Assert.Equal(LoraInit.Gaussian, pattern.Init);
        Assert.Equal(LoraInit.Default, new LoraConfig().Init);
    }

    [Fact]
    public void The_json_is_written_as_the_reference_writes_it()
    {
        var json = JsonNode.Parse(PeftJson.Serialize(new LoraConfig { TargetModules = new[] { "q", "v" }, InitLoraWeights = "gaussian" }))!;

        Assert.True(JsonNode.DeepEquals(new JsonArray("q", "v"), json["target_modules"]));
        Assert.Equal("gaussian", json["init_lora_weights"]!.GetValue<string>());
        var allLinear = JsonNode.Parse(PeftJson.Serialize(new LoraConfig { TargetModules = "all-linear", InitLoraWeights = true }))!;
        Assert.Equal("all-linear", allLinear["target_modules"]!.GetValue<string>());
        Assert.True(allLinear["init_lora_weights"]!.GetValue<bool>());
    }

    public static TheoryData<string> LoraFixtures()
    {
        var data = new TheoryData<string>();
        foreach (var file in Directory.GetFiles(Fixtures.Path("cases"), "adapter_config.json", SearchOption.AllDirectories).Order())
        {
            if (File.ReadAllText(file).Contains("\"peft_type\": \"LORA\"", StringComparison.Ordinal)) data.Add(Path.GetRelativePath(Fixtures.Path("cases"), file));
        }
        return data;
    }

    [Theory]
    [MemberData(nameof(LoraFixtures))]
    public void Reference_configs_round_trip_their_init_and_targets(string relativePath)
    {
        var original = JsonNode.Parse(File.ReadAllText(Fixtures.Path("cases", relativePath)))!;
        var config = JsonSerializer.Deserialize<LoraConfig>(original.ToJsonString(), PeftJson.Options)!;

        var written = JsonNode.Parse(PeftJson.Serialize(config))!;

        Assert.True(JsonNode.DeepEquals(original["init_lora_weights"], written["init_lora_weights"]), $"init_lora_weights: {original["init_lora_weights"]} → {written["init_lora_weights"]}");
        Assert.True(JsonNode.DeepEquals(original["target_modules"], written["target_modules"]), $"target_modules: {original["target_modules"]} → {written["target_modules"]}");
    }

    [Fact]
    public void An_initialisation_the_plugin_lacks_is_kept_and_refused_by_name()
    {
        var config = JsonSerializer.Deserialize<LoraConfig>("""{"peft_type": "LORA", "r": 4, "target_modules": ["q"], "init_lora_weights": "loftq"}""", PeftJson.Options)!;

        Assert.Equal("\"loftq\"", config.InitLoraWeights!.Json);
        Assert.Contains("loftq", Assert.Throws<PeftConfigException>(config.Validate).Message);
    }
}
