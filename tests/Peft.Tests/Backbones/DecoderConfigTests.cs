using Peft.Modeling;
using System.Text.Json;
using System.Text.Json.Nodes;
using Peft.Backbones.Bloom;
using Peft.Backbones.GptNeo;
using Peft.Backbones.Opt;
using Peft.Plugins;
using Peft.Tests.Checkpoints;

namespace Peft.Tests.Backbones;

/// <summary>BLOOM, OPT and GPT-Neo configs: a missing or inconsistent key is reported by name.</summary>
public class DecoderConfigTests
{
    public static TheoryData<string, string> RequiredKeys() => new()
    {
        { "bloom", "hidden_size" },
        { "bloom", "n_head" },
        { "bloom", "n_layer" },
        { "opt", "hidden_size" },
        { "opt", "num_attention_heads" },
        { "opt", "ffn_dim" },
        { "opt", "max_position_embeddings" },
        { "gpt_neo", "num_heads" },
        { "gpt_neo", "num_layers" },
        { "gpt_neo", "max_position_embeddings" },
    };

    [Theory]
    [MemberData(nameof(RequiredKeys))]
    public void MissingRequiredKeyIsNamed(string modelType, string key)
    {
        var (architecture, json) = Load(modelType);
        json.Remove(key);
        var error = Assert.Throws<ModelConfigException>(() => Parse(architecture, json));
        Assert.Contains(key, error.Message);
        Assert.Contains("config.json", error.Message);
    }

    [Fact]
    public void GptNeoWithoutAttentionPatternNamesAttentionTypes()
    {
        var (architecture, json) = Load("gpt_neo");
        json.Remove("attention_types");
        json.Remove("attention_layers");
        var error = Assert.Throws<ModelConfigException>(() => Parse(architecture, json));
        Assert.Contains("attention_types", error.Message);
    }

    [Fact]
    public void GptNeoAttentionTypesAreExpandedAndChecked()
    {
        var (architecture, json) = Load("gpt_neo");
        json.Remove("attention_layers");
        var config = (GptNeoConfig)Parse(architecture, json);
        Assert.Equal(["global", "local"], config.AttentionLayers);

        json["attention_types"] = JsonNode.Parse("""[[["global", "local"], 2]]""");
        var error = Assert.Throws<ModelConfigException>(() => Parse(architecture, json));
        Assert.Contains("num_layers", error.Message);
    }

    [Fact]
    public void OptDefaultsWordEmbedProjDimToHiddenSize()
    {
        var (architecture, json) = Load("opt");
        json.Remove("word_embed_proj_dim");
        var config = (OptConfig)Parse(architecture, json);
        Assert.Equal(config.HiddenSize, config.WordEmbedProjDim);
    }

    [Fact]
    public void BloomHeadsMustDivideHiddenSize()
    {
        var (architecture, json) = Load("bloom");
        json["n_head"] = 5;
        var error = Assert.Throws<ModelConfigException>(() => Parse(architecture, json));
        Assert.Contains("n_head", error.Message);
    }

    private static (IArchitecture Architecture, JsonObject Json) Load(string modelType)
    {
        IArchitecture architecture = modelType switch
        {
            "bloom" => new BloomArchitecture(),
            "opt" => new OptArchitecture(),
            _ => new GptNeoArchitecture(),
        };
        var json = JsonNode.Parse(File.ReadAllText(Fixtures.Path("models", modelType + "-clm", "config.json")))!.AsObject();
        return (architecture, json);
    }

    private static Modeling.ModelConfig Parse(IArchitecture architecture, JsonObject json)
    {
        using var document = JsonDocument.Parse(json.ToJsonString());
        return architecture.ParseConfig(document.RootElement, "test/config.json");
    }
}
