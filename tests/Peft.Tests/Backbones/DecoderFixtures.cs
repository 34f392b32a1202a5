using System.Text.Json.Nodes;
using Peft.Checkpoints;
using Peft.Modeling;
using Peft.Tests.Checkpoints;
using static TorchSharp.torch;

namespace Peft.Tests.Backbones;

/// <summary>The reference's inputs and outputs for decoder-only cases.</summary>
internal static class DecoderFixtures
{
    public static IReadOnlyDictionary<string, Tensor> Io(string caseName) =>
        SafeTensors.Load(Fixtures.Path("cases", caseName, "io.safetensors"));

    /// <summary>The case's batch (row 1 right-padded), without labels.</summary>
    public static ModelInputs Inputs(string caseName)
    {
        var io = Io(caseName);
        return new ModelInputs { InputIds = io["input.input_ids"], AttentionMask = io["input.attention_mask"] };
    }

    /// <summary>The fixture model with its config.json edited, loaded from a copy in <paramref name="scratch"/>.</summary>
    public static PreTrainedModel LoadWith(string model, ScratchDirectory scratch, Action<JsonObject> edit)
    {
        var source = Fixtures.Path("models", model);
        var config = JsonNode.Parse(File.ReadAllText(System.IO.Path.Combine(source, "config.json")))!.AsObject();
        edit(config);
        File.WriteAllText(scratch.File("config.json"), config.ToJsonString());
        File.Copy(System.IO.Path.Combine(source, "model.safetensors"), scratch.File("model.safetensors"));
        return PeftModels.Default.LoadPretrained(scratch.Path, TaskType.CausalLM);
    }

    public static PreTrainedModel Load(string model) =>
        PeftModels.Default.LoadPretrained(Fixtures.Path("models", model), TaskType.CausalLM);
}
