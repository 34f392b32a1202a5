using Peft.Modeling;
using Peft.Plugins;
using Peft.Tests.Checkpoints;

namespace Peft.Tests.Registry;

/// <summary>A registry with no plugins is a set-up mistake: its errors say which builder call is missing.</summary>
public class EmptyRegistryTests
{
    [Fact]
    public void ModelLoadOnAnEmptyRegistrySaysToAddTheBuiltInBackbones()
    {
        var models = new PeftModels(new PeftRegistry([], []));
        var error = Assert.Throws<ModelConfigException>(() => models.ReadConfig(Fixtures.Path("models", "gpt2-clm")));
        Assert.Contains("AddBuiltInBackbones()", error.Message);
    }

    [Fact]
    public void AdapterConfigOnAnEmptyRegistrySaysToAddTheBuiltInMethods()
    {
        var registry = new PeftRegistry([], []);
        var error = Assert.Throws<PeftConfigException>(() => new PeftModels(registry).ReadAdapterConfig(Fixtures.Path("cases", "gpt2-clm-lora", "adapter")));
        Assert.Contains("AddBuiltInMethods()", error.Message);
        Assert.Contains("AddBuiltInMethods()", Assert.Throws<KeyNotFoundException>(() => registry.Method(new PeftType("LORA"))).Message);
    }
}
