using Peft.Backbones.Bert;
using Peft.Backbones.Gpt2;
using Peft.Backbones.LayoutLm;
using Peft.Backbones.Roberta;
using Peft.Backbones.Bart;
using Peft.Backbones.Gpt2;
using Peft.Backbones.T5;
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
        new BertArchitecture(),
        new RobertaArchitecture(),
        new LayoutLmArchitecture(),
        new Peft.Backbones.Bloom.BloomArchitecture(),
        new Peft.Backbones.Opt.OptArchitecture(),
        new Peft.Backbones.GptNeo.GptNeoArchitecture(),
        new T5Architecture(), new MT5Architecture(),
        new BartArchitecture(),
    ];

    /// <summary>A fresh instance of each built-in method.</summary>
    public static IEnumerable<IPeftMethod> Methods() =>
    [
        new LoraMethod(),
    ];
}
