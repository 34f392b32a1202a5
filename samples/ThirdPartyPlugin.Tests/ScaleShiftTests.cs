using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using Peft;
using Peft.Checkpoints;
using Peft.Modeling;
using Peft.Tuners;
using ThirdPartyPlugin.ScaleShift;
using ThirdPartyPlugin.TinyMixer;
using TorchSharp;

namespace ThirdPartyPlugin.Tests;

/// <summary>The SCALE_SHIFT method's own contract: identity start, saved keys, merging, and use on a built-in architecture.</summary>
public sealed class ScaleShiftTests
{
    private static (PeftModels Models, ServiceProvider Provider) Host()
    {
        var provider = Plugins.Provider();
        return (provider.GetRequiredService<PeftModels>(), provider);
    }

    [Fact]
    public void StartsAsTheBaseModel()
    {
        var (models, provider) = Host();
        using var _ = provider;
        using var checkpoint = new TinyMixerCheckpoint(models);
        using var scope = torch.NewDisposeScope();
        var inputs = MajorityTask.Collate(MajorityTask.Data(8, seed: 5)) with { Labels = null };
        var model = models.LoadPretrained(checkpoint.Path, TaskType.SequenceClassification);
        var baseLogits = model.call(inputs).Logits;
        var peft = models.GetPeftModel(model, new ScaleShiftConfig());
        Assert.Equal(0, MajorityTask.MaxDiff(baseLogits, peft.call(inputs).Logits));
    }

    [Fact]
    public void SavesTwoVectorsPerTargetedLayerUnderTheReferenceStyleKeys()
    {
        var (models, provider) = Host();
        using var _ = provider;
        using var checkpoint = new TinyMixerCheckpoint(models);
        using var saved = new ScratchDirectory();
        var peft = models.GetPeftModel(models.LoadPretrained(checkpoint.Path, TaskType.SequenceClassification),
            new ScaleShiftConfig { TargetModules = TargetModules.FromNames(["fc_in"]) });
        peft.SavePretrained(saved.Path);

        var state = SafeTensors.Load(Path.Combine(saved.Path, "adapter_model.safetensors"));
        Assert.Equal(
            [
                "base_model.model.mixer.layers.0.fc_in.scale_shift.scale",
                "base_model.model.mixer.layers.0.fc_in.scale_shift.shift",
                "base_model.model.mixer.layers.1.fc_in.scale_shift.scale",
                "base_model.model.mixer.layers.1.fc_in.scale_shift.shift",
            ],
            state.Keys.Order(StringComparer.Ordinal));
        Assert.All(state.Values, t => Assert.Equal([64L], t.shape));   // intermediate_size
        Assert.Equal(2 * 2 * 64, peft.GetNbTrainableParameters().Trainable);   // scale and shift, 2 layers

        using var config = JsonDocument.Parse(File.ReadAllText(Path.Combine(saved.Path, "adapter_config.json")));
        Assert.Equal("SCALE_SHIFT", config.RootElement.GetProperty("peft_type").GetString());
        Assert.True(config.RootElement.GetProperty("init_weights").GetBoolean());
    }

    [Fact]
    public void MergeFoldsScaleAndShiftIntoTheLayersAndUnmergeRestoresThem()
    {
        var (models, provider) = Host();
        using var _ = provider;
        using var checkpoint = new TinyMixerCheckpoint(models);
        using var scope = torch.NewDisposeScope();
        var inputs = MajorityTask.Collate(MajorityTask.Data(8, seed: 6)) with { Labels = null };
        var model = models.LoadPretrained(checkpoint.Path, TaskType.SequenceClassification);
        var before = model.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.clone());
        torch.manual_seed(7);
        // Random vectors, so that merging has something to fold; mix_proj has no bias, so merging gives it one.
        var peft = models.GetPeftModel(model, new ScaleShiftConfig { InitWeights = false });
        var adapted = peft.call(inputs).Logits;
        var baseLogits = UsingDisabled(peft, () => peft.call(inputs).Logits);
        Assert.True(MajorityTask.MaxDiff(adapted, baseLogits) > 1e-3);

        peft.Merge();
        Assert.True(MajorityTask.MaxDiff(adapted, peft.call(inputs).Logits) <= 1e-5);
        peft.Unmerge();
        Assert.True(MajorityTask.MaxDiff(adapted, peft.call(inputs).Logits) <= 1e-5);
        foreach (var (name, weight) in before)
        {
            var key = name.Replace("fc_in.", "fc_in.base_layer.").Replace("fc_out.", "fc_out.base_layer.").Replace("mix_proj.", "mix_proj.base_layer.");
            Assert.True(MajorityTask.MaxDiff(weight, peft.Model.state_dict()[key]) <= 1e-5, $"{name} was not restored by unmerge");
        }

        var merged = peft.MergeAndUnload();
        Assert.DoesNotContain(merged.modules(), m => m is ScaleShiftLayer);
        Assert.True(MajorityTask.MaxDiff(adapted, merged.call(inputs).Logits) <= 1e-5);
    }

    [Fact]
    public void AdaptsTheBuiltInGpt2ThroughItsConv1DLayers()
    {
        var (models, provider) = Host();
        using var _ = provider;
        using var scope = torch.NewDisposeScope();
        var architecture = models.Registry.Architecture("gpt2");
        using var json = JsonDocument.Parse("""
            { "model_type": "gpt2", "vocab_size": 64, "n_embd": 32, "n_head": 4, "n_layer": 2, "n_positions": 32,
              "attn_pdrop": 0.0, "embd_pdrop": 0.0, "resid_pdrop": 0.0 }
            """);
        torch.manual_seed(8);
        var model = architecture.Build(architecture.ParseConfig(json.RootElement, "inline gpt2 config"), TaskType.CausalLM);
        model.eval();
        var ids = torch.randint(0, 64, [2, 6]);
        var inputs = new ModelInputs { InputIds = ids, AttentionMask = torch.ones_like(ids) };
        var peft = models.GetPeftModel(model, new ScaleShiftConfig { TargetModules = TargetModules.FromNames(["c_attn", "c_proj"]), InitWeights = false });
        Assert.Equal(6, peft.Model.modules().OfType<ScaleShiftLayer>().Count());   // attn.c_attn, attn.c_proj, mlp.c_proj; 2 layers
        var adapted = peft.call(inputs).Logits;
        var merged = peft.MergeAndUnload().call(inputs).Logits;
        Assert.True(MajorityTask.MaxDiff(adapted, merged) <= 1e-4, $"merged differs by {MajorityTask.MaxDiff(adapted, merged)}");
    }

    [Fact]
    public void RefusesALayerKindItDoesNotSupportNamingTheModule()
    {
        var (models, provider) = Host();
        using var _ = provider;
        using var checkpoint = new TinyMixerCheckpoint(models);
        var model = models.LoadPretrained(checkpoint.Path, TaskType.SequenceClassification);
        var error = Assert.Throws<PeftConfigException>(() =>
            models.GetPeftModel(model, new ScaleShiftConfig { TargetModules = TargetModules.FromNames(["embed_tokens"]) }));
        Assert.Contains("mixer.embed_tokens", error.Message);
        Assert.Contains("SCALE_SHIFT", error.Message);
    }

    private static T UsingDisabled<T>(PeftModel peft, Func<T> run)
    {
        using (peft.DisableAdapter()) return run();
    }
}
