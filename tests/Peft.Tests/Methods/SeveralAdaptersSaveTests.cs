using System.Text.Json.Nodes;
using Peft.Methods.Lora;
using Peft.Modeling;
using Peft.Tests.PromptLearning;
using TorchSharp;

namespace Peft.Tests.Methods;

/// <summary>
/// SavePretrained of several adapters lays them out as the reference's save_pretrained: "default" in the folder
/// itself, every other adapter in a sub-folder named after it, each loadable on its own.
/// </summary>
public class SeveralAdaptersSaveTests
{
    [Fact]
    public void EachAdapterGoesToItsOwnFolderAndLoadsBackAsItWas()
    {
        using var scope = torch.NewDisposeScope();
        var directory = Directory.CreateTempSubdirectory("peft-several-").FullName;
        try
        {
            torch.manual_seed(3);
            var peft = TinyModels.Peft(TinyModels.Gpt2(TaskType.CausalLM), new LoraConfig { R = 2, TargetModules = new[] { "c_attn" }, InitLoraWeights = LoraInitWeights.Random });
            peft.AddAdapter("wide", new LoraConfig { R = 4, LoraAlpha = 16, TargetModules = new[] { "c_attn", "c_fc" }, InitLoraWeights = LoraInitWeights.Random });
            var ids = TinyModels.Ids([3, 5, 7, 2]);
            var outputs = new Dictionary<string, torch.Tensor>();
            foreach (var name in new[] { "default", "wide" })
            {
                peft.SetAdapter(name);
                outputs[name] = peft.call(new ModelInputs { InputIds = ids }).Logits.detach();
            }
            peft.SavePretrained(directory);

            Assert.True(File.Exists(Path.Combine(directory, "adapter_config.json")));
            Assert.True(File.Exists(Path.Combine(directory, "wide", "adapter_model.safetensors")));
            Assert.Equal(4, (int?)JsonNode.Parse(File.ReadAllText(Path.Combine(directory, "wide", "adapter_config.json")))!["r"]);

            var loaded = PeftModels.Default.FromPretrained(TinyModels.Gpt2(TaskType.CausalLM), directory);
            loaded.LoadAdapter(Path.Combine(directory, "wide"), "wide");
            TinyModels.AssertClose(outputs["default"], loaded.call(new ModelInputs { InputIds = ids }).Logits, 1e-6);
            loaded.SetAdapter("wide");
            TinyModels.AssertClose(outputs["wide"], loaded.call(new ModelInputs { InputIds = ids }).Logits, 1e-6);

            // Saving a subset rewrites that adapter's folder and leaves the others as they were (the reference's selected_adapters).
            var defaultBytes = File.ReadAllBytes(Path.Combine(directory, "adapter_model.safetensors"));
            loaded.SavePretrained(directory, ["wide"]);
            Assert.Equal(defaultBytes, File.ReadAllBytes(Path.Combine(directory, "adapter_model.safetensors")));
            Assert.True(File.Exists(Path.Combine(directory, "wide", "adapter_config.json")));
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }
}
