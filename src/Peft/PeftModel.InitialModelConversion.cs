using Peft.Checkpoints;
using Peft.Methods.Lora;
using static TorchSharp.torch;

namespace Peft;

public sealed partial class PeftModel
{
    /// <summary>
    /// A PiSSA or OLoRA adapter as a plain LoRA adapter for the unmodified base model: its config and tensors, from the
    /// state saved in <paramref name="initialAdapterDirectory"/> before training (<see cref="LoraInitialModelConversion"/>).
    /// </summary>
    private (PeftConfig Config, Dictionary<string, Tensor> State) ConvertedForInitialModel(
        PeftConfig config, Dictionary<string, Tensor> state, string initialAdapterDirectory)
    {
        if (config is not LoraConfig lora)
        {
            throw new NotSupportedException($"Converting an adapter for the initial model on save is only supported for LoRA, not {config.PeftType}.");
        }
        if (lora.Init is not (LoraInit.Pissa or LoraInit.PissaLowRank or LoraInit.Olora or LoraInit.Default))
        {
            PeftLog.Warn("Converting on save only makes sense for a PiSSA or OLoRA adapter (init_lora_weights " + lora.InitLoraWeights + "), whose initialisation changed the base weights.");
        }
        var initialConfig = ReadAdapterConfig(_registry, initialAdapterDirectory);
        var configSource = Path.Combine(initialAdapterDirectory, ConfigFileName);
        if (initialConfig is not LoraConfig initialLora || initialLora.R != lora.R)
        {
            throw new PeftConfigException($"{configSource}: the initial adapter must be this LoRA adapter (r = {lora.R}) as saved before training; it is {initialConfig.PeftType}"
                + (initialConfig is LoraConfig other ? $" with r = {other.R}." : "."));
        }
        var weightsSource = Path.Combine(initialAdapterDirectory, WeightsFileName);
        var initial = SafeTensors.Load(weightsSource);
        try
        {
            return (LoraInitialModelConversion.ConvertedConfig(lora), LoraInitialModelConversion.ConvertedWeights(state, initial, weightsSource));
        }
        finally
        {
            foreach (var tensor in initial.Values) tensor.Dispose();
        }
    }

    /// <summary>
    /// Sets the initial adapter's <c>init_lora_weights</c> to true, as the reference does after a conversion: loaded with
    /// "pissa" it would decompose the (already residual) base again. Replaced atomically, weights copied unchanged.
    /// </summary>
    private void MarkInitialAdapterLoadable(string initialAdapterDirectory)
    {
        var config = (LoraConfig)ReadAdapterConfig(_registry, initialAdapterDirectory) with { InitLoraWeights = LoraInitWeights.Default };
        var weights = File.ReadAllBytes(Path.Combine(initialAdapterDirectory, WeightsFileName));
        var others = Directory.GetFiles(initialAdapterDirectory)
            .Where(f => Path.GetFileName(f) is not (ConfigFileName or WeightsFileName))
            .Select(f => (Name: Path.GetFileName(f), Bytes: File.ReadAllBytes(f)))
            .ToList();
        AtomicDirectory.Write(initialAdapterDirectory, staging =>
        {
            File.WriteAllBytes(Path.Combine(staging, WeightsFileName), weights);
            foreach (var (name, bytes) in others) File.WriteAllBytes(Path.Combine(staging, name), bytes);
            File.WriteAllText(Path.Combine(staging, ConfigFileName), PeftJson.Serialize(config));
        });
    }
}
