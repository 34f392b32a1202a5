using Peft.Modeling;
using System.Text.Json;
using System.Text.Json.Nodes;
using Peft.Backbones.GptNeoX;
using Peft.Backbones.Llama;
using Peft.Backbones.Shared;
using Peft.Plugins;
using Peft.Tests.Checkpoints;
using TorchSharp;

namespace Peft.Tests.Backbones;

/// <summary>Rotary settings from transformers 5's rope_parameters and transformers 4's keys.</summary>
public class RopeConfigTests
{
    private static JsonObject FixtureConfig(string model) =>
        JsonNode.Parse(File.ReadAllText(Fixtures.Path("models", model, "config.json")))!.AsObject();

    private static LlamaConfig ParseLlama(JsonObject json)
    {
        using var document = JsonDocument.Parse(json.ToJsonString());
        return (LlamaConfig)new LlamaArchitecture().ParseConfig(document.RootElement, "config.json");
    }

    private static GptNeoXConfig ParseNeoX(JsonObject json)
    {
        using var document = JsonDocument.Parse(json.ToJsonString());
        return (GptNeoXConfig)new GptNeoXArchitecture().ParseConfig(document.RootElement, "config.json");
    }

    [Fact]
    public void ReadsRopeParameters()
    {
        var json = FixtureConfig("llama-clm");
        json["rope_parameters"]!["rope_theta"] = 500000.0;

        var rope = ParseLlama(json).ResolveRope();

        Assert.Equal(new RopeSettings("default", 500000.0), rope);
    }

    [Fact]
    public void ReadsTransformers4Keys()
    {
        var json = FixtureConfig("llama-clm");
        json.Remove("rope_parameters");
        json["rope_theta"] = 250000.0;
        json["rope_scaling"] = new JsonObject { ["type"] = "linear", ["factor"] = 2.0 };

        var rope = ParseLlama(json).ResolveRope();

        Assert.Equal(new RopeSettings("linear", 250000.0, Factor: 2.0), rope);
    }

    [Fact]
    public void GptNeoXReadsRotaryPctAndBase()
    {
        var json = FixtureConfig("gpt_neox-clm");
        json.Remove("rope_parameters");
        json["rotary_pct"] = 0.5;
        json["rotary_emb_base"] = 20000;

        var config = ParseNeoX(json);

        Assert.Equal(new RopeSettings("default", 20000.0, PartialRotaryFactor: 0.5), config.ResolveRope());
        Assert.Equal(0.25, ParseNeoX(FixtureConfig("gpt_neox-clm")).ResolveRope().PartialRotaryFactor);
    }

    [Theory]
    [InlineData("yarn")]
    [InlineData("dynamic")]
    [InlineData("no_such_type")]
    public void RefusesRopeTypesItDoesNotCompute(string type)
    {
        var json = FixtureConfig("llama-clm");
        json["rope_parameters"]!["rope_type"] = type;
        json["rope_parameters"]!["factor"] = 4.0;

        var error = Assert.Throws<ModelConfigException>(() => ParseLlama(json));

        Assert.Contains($"rope type '{type}' is not supported", error.Message);
        Assert.Contains("default, linear, llama3", error.Message);
    }

    [Fact]
    public void Llama3NeedsItsFactors()
    {
        var json = FixtureConfig("llama-clm");
        json["rope_parameters"] = new JsonObject { ["rope_type"] = "llama3", ["rope_theta"] = 10000.0, ["factor"] = 8.0 };

        var error = Assert.Throws<ModelConfigException>(() => ParseLlama(json));

        Assert.Contains("low_freq_factor", error.Message);
    }

    [Fact]
    public void Llama3ScalesLowFrequenciesAndKeepsHighOnes()
    {
        using var scope = torch.NewDisposeScope();
        var settings = new RopeSettings("llama3", 500000.0, Factor: 8.0, LowFreqFactor: 1.0, HighFreqFactor: 4.0, OriginalMaxPositions: 64);
        var plain = new RotaryEmbedding("plain", 32, new RopeSettings("default", 500000.0)).InverseFrequencies(torch.CPU);
        var scaled = new RotaryEmbedding("llama3", 32, settings).InverseFrequencies(torch.CPU);
        var wavelength = 2 * Math.PI / plain;

        var high = wavelength.lt(64 / 4.0);
        var low = wavelength.gt(64 / 1.0);
        var medium = high.logical_or(low).logical_not();

        Assert.True(high.any().item<bool>() && low.any().item<bool>() && medium.any().item<bool>(), "the test should cover all three bands");
        Assert.True(scaled[high].equal(plain[high]).all().item<bool>());
        Assert.True(scaled[low].allclose(plain[low] / 8.0));
        Assert.True(scaled[medium].lt(plain[medium]).all().item<bool>() && scaled[medium].gt(plain[medium] / 8.0).all().item<bool>());
    }
}
