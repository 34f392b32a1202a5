using Microsoft.Extensions.DependencyInjection;

namespace Peft.Tests.Registry;

/// <summary>The registration entry points refuse null arguments by name, before touching anything.</summary>
public class AddPeftArgumentTests
{
    [Fact]
    public void NullArgumentsAreRefusedByName()
    {
        Assert.Equal("services", Assert.Throws<ArgumentNullException>(() => PeftServiceCollectionExtensions.AddPeft(null!)).ParamName);
        Assert.Equal("configure", Assert.Throws<ArgumentNullException>(() => new ServiceCollection().AddPeft(null!)).ParamName);
        Assert.Equal("builder", Assert.Throws<ArgumentNullException>(() => PeftBuilderExtensions.AddBuiltInMethods(null!)).ParamName);
        Assert.Equal("builder", Assert.Throws<ArgumentNullException>(() => PeftBuilderExtensions.AddBuiltInBackbones(null!)).ParamName);
        Assert.Equal("builder", Assert.Throws<ArgumentNullException>(() => PeftBuilderExtensions.AddMethod<Peft.Methods.Lora.LoraMethod>(null!)).ParamName);
        Assert.Equal("builder", Assert.Throws<ArgumentNullException>(() => PeftBuilderExtensions.AddBackbone<Peft.Backbones.Gpt2.Gpt2Architecture>(null!)).ParamName);
    }
}
