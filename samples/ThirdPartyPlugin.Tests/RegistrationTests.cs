using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using Peft;
using Peft.Methods.Lora;
using Peft.Modeling;
using Peft.Plugins;
using Peft.Tuners;
using ThirdPartyPlugin.ScaleShift;
using ThirdPartyPlugin.TinyMixer;
using static TorchSharp.torch;

namespace ThirdPartyPlugin.Tests;

/// <summary>How the plugins meet the registry: AddPeft(), resolution, and conflicts.</summary>
public sealed partial class RegistrationTests
{
    [Fact]
    public void AddPeftRegistersTheThirdPartyPluginsBesideTheBuiltIns()
    {
        using var provider = Plugins.Provider();
        var registry = provider.GetRequiredService<PeftModels>().Registry;
        Assert.Contains("tiny-mixer", registry.ModelTypes);
        Assert.Contains("gpt2", registry.ModelTypes);
        Assert.Contains("SCALE_SHIFT", registry.PeftTypes);
        Assert.Contains("LORA", registry.PeftTypes);
        Assert.Same(registry, provider.GetRequiredService<PeftRegistry>());
    }

    [Fact]
    public void TheGeneratorWritesTheDeclaredDefaultsAndSlots()
    {
        Assert.Equal(["mix_proj", "fc_in", "fc_out"], new TinyMixerArchitecture().DefaultTargets["LORA"]);
        var config = new TinyMixerConfig { ModelType = "tiny-mixer", VocabSize = 8, HiddenSize = 4, IntermediateSize = 8, NumHiddenLayers = 1 };
        using var block = new TinyMixerBlock(config);
        Assert.Equal(["mix_proj", "fc_in", "fc_out"], ((IModuleSlots)block).SlotNames);
    }

    [Fact]
    public void RegisteringTheSamePluginTwiceIsHarmless()
    {
        var services = new ServiceCollection();
        services.AddPeft(p => p.AddBackbone<TinyMixerArchitecture>().AddBackbone<TinyMixerArchitecture>().AddMethod<ScaleShiftMethod>());
        services.AddPeft(p => p.AddMethod<ScaleShiftMethod>());
        using var provider = services.BuildServiceProvider();
        Assert.Equal(["tiny-mixer"], provider.GetRequiredService<PeftModels>().Registry.ModelTypes);
    }

    [Fact]
    public void ASecondArchitectureForTheSameModelTypeIsAnErrorNamingBoth()
    {
        var services = new ServiceCollection();
        services.AddPeft(p => p.AddBuiltInBackbones().AddBackbone<TinyMixerArchitecture>().AddBackbone<ImpostorMixerArchitecture>());
        using var provider = services.BuildServiceProvider();
        var error = Assert.Throws<InvalidOperationException>(() => provider.GetRequiredService<PeftModels>());
        Assert.Contains("'tiny-mixer'", error.Message);
        Assert.Contains(typeof(TinyMixerArchitecture).FullName!, error.Message);
        Assert.Contains(typeof(ImpostorMixerArchitecture).FullName!, error.Message);
    }

    [Fact]
    public void ASecondMethodForABuiltInPeftTypeIsAnErrorNamingBoth()
    {
        var services = new ServiceCollection();
        services.AddPeft(p => p.AddBuiltInMethods().AddMethod<ImpostorLoraMethod>());
        using var provider = services.BuildServiceProvider();
        var error = Assert.Throws<InvalidOperationException>(() => provider.GetRequiredService<PeftModels>());
        Assert.Contains("'LORA'", error.Message);
        Assert.Contains(typeof(LoraMethod).FullName!, error.Message);
        Assert.Contains(typeof(ImpostorLoraMethod).FullName!, error.Message);
    }

    [Fact]
    public void WithoutThePluginTheModelTypeIsRefusedNamingWhatIsRegistered()
    {
        var services = new ServiceCollection();
        services.AddPeft(p => p.AddBuiltInMethods().AddBuiltInBackbones());
        using var provider = services.BuildServiceProvider();
        var models = provider.GetRequiredService<PeftModels>();
        using var directory = new ScratchDirectory();
        File.WriteAllText(Path.Combine(directory.Path, "config.json"), TinyMixerCheckpoint.ConfigJson);
        var error = Assert.Throws<ModelConfigException>(() => models.ReadConfig(directory.Path));
        Assert.Contains("'tiny-mixer'", error.Message);
        Assert.Contains("gpt2", error.Message);
    }

    /// <summary>Another plugin claiming tiny-mixer's model_type.</summary>
    [DefaultTargets("LORA", "fc_in")]
    public sealed partial class ImpostorMixerArchitecture : IArchitecture
    {
        public string ModelType => TinyMixerArchitecture.Type;

        public IReadOnlyList<TaskType> SupportedTasks { get; } = [TaskType.SequenceClassification];

        public ModelConfig ParseConfig(JsonElement json, string source) => throw new NotSupportedException();

        public PreTrainedModel Build(ModelConfig config, TaskType task) => throw new NotSupportedException();
    }

    /// <summary>A plugin claiming the built-in LORA.</summary>
    public sealed class ImpostorLoraMethod : TunerMethod<LoraConfig>
    {
        public override PeftType PeftType => PeftType.Lora;

        public override string ParameterPrefix => "lora_";

        protected override nn.Module<Tensor, Tensor>? CreateLayer(nn.Module<Tensor, Tensor> baseLayer, LayerShape shape, LoraConfig config, string adapterName, string path) => null;

        protected override bool TryAddToLayer(nn.Module<Tensor, Tensor> existing, LoraConfig config, string adapterName, string path) => false;
    }
}
