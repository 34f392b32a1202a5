using Peft.Backbones.Gpt2;
using Peft.Methods.Lora;
using Peft.Plugins;

namespace Peft;

/// <summary>The plugins that ship with Peft for .NET.</summary>
public static class BuiltIns
{
    /// <summary>A fresh instance of each built-in architecture.</summary>
    public static IEnumerable<IArchitecture> Architectures() =>
    [
        new Gpt2Architecture(),
        new Peft.Backbones.Llama.LlamaArchitecture(),
        new Peft.Backbones.GptJ.GptJArchitecture(),
        new Peft.Backbones.GptNeoX.GptNeoXArchitecture(),
    ];

    /// <summary>A fresh instance of each built-in method.</summary>
    public static IEnumerable<IPeftMethod> Methods() =>
    [
        new LoraMethod(),
    ];
}
