using Peft.Plugins;

namespace Peft;

/// <summary>The plugins that ship with Peft for .NET.</summary>
/// <remarks>One fully qualified line per plugin, so that adding one is a one-line change.</remarks>
public static class BuiltIns
{
    /// <summary>A fresh instance of each built-in architecture.</summary>
    public static IEnumerable<IArchitecture> Architectures() =>
    [
        new Peft.Backbones.Bart.BartArchitecture(),
        new Peft.Backbones.Bert.BertArchitecture(),
        new Peft.Backbones.Bloom.BloomArchitecture(),
        new Peft.Backbones.ClipText.ClipTextArchitecture(),
        new Peft.Backbones.Deberta.DebertaArchitecture(),
        new Peft.Backbones.DebertaV2.DebertaV2Architecture(),
        new Peft.Backbones.Gpt2.Gpt2Architecture(),
        new Peft.Backbones.GptJ.GptJArchitecture(),
        new Peft.Backbones.GptNeo.GptNeoArchitecture(),
        new Peft.Backbones.GptNeoX.GptNeoXArchitecture(),
        new Peft.Backbones.LayoutLm.LayoutLmArchitecture(),
        new Peft.Backbones.Llama.LlamaArchitecture(),
        new Peft.Backbones.Opt.OptArchitecture(),
        new Peft.Backbones.ResNet.ResNetArchitecture(),
        new Peft.Backbones.Roberta.RobertaArchitecture(),
        new Peft.Backbones.Segformer.SegformerArchitecture(),
        new Peft.Backbones.Swin.SwinArchitecture(),
        new Peft.Backbones.T5.MT5Architecture(),
        new Peft.Backbones.T5.T5Architecture(),
        new Peft.Backbones.Vit.ViTArchitecture(),
    ];

    /// <summary>A fresh instance of each built-in method.</summary>
    public static IEnumerable<IPeftMethod> Methods() =>
    [
        new Peft.Methods.AdaLora.AdaLoraMethod(),
        new Peft.Methods.Boft.BoftMethod(),
        new Peft.Methods.FourierFT.FourierFTMethod(),
        new Peft.Methods.IA3.IA3Method(),
        new Peft.Methods.LoHa.LoHaMethod(),
        new Peft.Methods.LnTuning.LnTuningMethod(),
        new Peft.Methods.LoKr.LoKrMethod(),
        new Peft.Methods.Lora.LoraMethod(),
        new Peft.Methods.Oft.OftMethod(),
        new Peft.Methods.PrefixTuning.PrefixTuningMethod(),
        new Peft.Methods.PromptTuning.PromptTuningMethod(),
        new Peft.Methods.PTuning.PTuningMethod(),
        new Peft.Methods.Vera.VeraMethod(),
    ];
}
