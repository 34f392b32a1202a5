using System.Text.Json;
using System.Text.Json.Nodes;
using Peft.Backbones.Opt;
using Peft.Methods.Lora;
using Peft.Modeling;
using Peft.Tests.Checkpoints;
using Peft.Tuners;
using TorchSharp;

namespace Peft.Tests.Backbones;

/// <summary>OPT whose token embedding is narrower than its layers (word_embed_proj_dim ≠ hidden_size, as OPT-350m).</summary>
public class OptProjectionTests
{
    [Fact]
    public void ProjectionsRunAndAreAllLinearTargets()
    {
        using var scope = torch.NewDisposeScope();
        var json = JsonNode.Parse(File.ReadAllText(Fixtures.Path("models", "opt-clm", "config.json")))!.AsObject();
        json["word_embed_proj_dim"] = 16;
        json["do_layer_norm_before"] = false;
        using var document = JsonDocument.Parse(json.ToJsonString());
        var architecture = new OptArchitecture();
        var config = (OptConfig)architecture.ParseConfig(document.RootElement, "opt-350m-like/config.json");
        torch.manual_seed(0);
        var model = architecture.Build(config, TaskType.CausalLM);
        model.eval();
        Assert.Contains("model.decoder.project_in.weight", model.state_dict().Keys);
        Assert.DoesNotContain("model.decoder.final_layer_norm.weight", model.state_dict().Keys);
        Assert.Equal(16, model.PromptLayout!.HiddenSize);

        var ids = torch.tensor(new long[] { 5, 9, 3, 7, 1, 4 }, [1, 6]);
        var before = model.call(new ModelInputs { InputIds = ids }).Logits;
        Assert.Equal([1L, 6, 128], before.shape);

        var peft = PeftModels.Default.GetPeftModel(model, new LoraConfig
        {
            TaskType = TaskType.CausalLM,
            TargetModules = TargetModules.FromPattern(TargetModules.AllLinearValue),
        });
        var adapted = model.named_modules().Where(m => m.module is IAdapterLayer).Select(m => m.name).ToList();
        Assert.Contains("model.decoder.project_in", adapted);
        Assert.Contains("model.decoder.project_out", adapted);
        Assert.Contains("model.decoder.layers.1.fc2", adapted);
        Assert.Equal(9, peft.Generate(ids, maxNewTokens: 3).shape[1]);

        var unloaded = peft.Unload();
        var after = unloaded.call(new ModelInputs { InputIds = ids }).Logits;
        Assert.True(before.allclose(after, rtol: 0, atol: 1e-6));
    }
}
