using Peft.Checkpoints;
using Peft.Modeling;
using Peft.Tests.Backbones;
using Peft.Tests.Checkpoints;
using Peft.Tuners;
using TorchSharp;
using static TorchSharp.torch;

namespace Peft.Tests.Methods;

/// <summary>
/// What every layer-replacing method must satisfy, on the fixtures' tiny base models (llama-clm: Linear
/// layers without bias; gpt2-clm: GPT-2's Conv1D): an adapter that moves the outputs, merged outputs equal
/// to unmerged ones, unmerge and unload restoring the base model, and a saved adapter that reloads.
/// </summary>
internal static class TunerContract
{
    /// <summary>A fixture base model and the batch the reference used with it.</summary>
    public static (PreTrainedModel Model, ModelInputs Inputs) Base(string model)
    {
        var inputs = DecoderFixtures.Inputs($"{model}-lora");
        return (DecoderFixtures.Load(model), inputs);
    }

    public static PeftModel Attach(string model, PeftConfig config, out ModelInputs inputs, out Tensor baseLogits, long seed = 7)
    {
        var (baseModel, batch) = Base(model);
        inputs = batch;
        baseLogits = baseModel.call(batch).Logits;
        torch.manual_seed(seed);
        return PeftModels.Default.GetPeftModel(baseModel, config);
    }

    /// <summary>
    /// The adapter changes the outputs; merged outputs equal unmerged ones; unmerging restores the base
    /// weights; the disabled adapter gives the base outputs; merge-and-unload leaves no adapter layer.
    /// </summary>
    public static void MergeMatchesUnmerged(string model, PeftConfig config, double tolerance = 1e-4)
    {
        using var scope = torch.NewDisposeScope();
        var peft = Attach(model, config, out var inputs, out var baseLogits);
        peft.eval();
        var weightsBefore = BaseWeights(peft);
        var adapted = peft.call(inputs).Logits;
        Assert.True((adapted - baseLogits).abs().max().item<float>() > 1e-3, "a randomly initialised adapter should change the outputs");

        peft.Merge();
        AssertClose(adapted, peft.call(inputs).Logits, tolerance);
        peft.Unmerge();
        foreach (var (name, weight) in BaseWeights(peft)) AssertClose(weightsBefore[name], weight, 1e-5);
        AssertClose(adapted, peft.call(inputs).Logits, tolerance);
        using (peft.DisableAdapter())
        {
            AssertClose(baseLogits, peft.call(inputs).Logits, 1e-5);
        }

        var merged = peft.MergeAndUnload();
        Assert.DoesNotContain(merged.modules(), m => m is IAdapterLayer);
        AssertClose(adapted, merged.call(inputs).Logits, tolerance);
    }

    /// <summary>Saves a trained-looking adapter, reloads it into a fresh base model and gets the same outputs; returns the saved keys.</summary>
    public static IReadOnlyCollection<string> SavedAdapterReloads(string model, PeftConfig config)
    {
        using var scope = torch.NewDisposeScope();
        using var scratch = new ScratchDirectory();
        var peft = Attach(model, config, out var inputs, out _);
        peft.eval();
        var adapted = peft.call(inputs).Logits;
        peft.SavePretrained(scratch.Path);

        torch.manual_seed(99); // a different draw: only the file may make the outputs equal
        var reloaded = PeftModels.Default.FromPretrained(Base(model).Model, scratch.Path);
        reloaded.eval();
        AssertClose(adapted, reloaded.call(inputs).Logits, 1e-5);
        Assert.Equal(config.PeftType, reloaded.PeftConfig.PeftType);
        return SafeTensors.ReadHeader(scratch.File("adapter_model.safetensors")).Tensors.Keys.ToList();
    }

    public static void AssertClose(Tensor expected, Tensor actual, double tolerance)
    {
        Assert.Equal(expected.shape, actual.shape);
        var difference = (expected.detach() - actual.detach()).abs().max().item<float>();
        Assert.True(difference <= tolerance, $"max |difference| {difference} > {tolerance}");
    }

    private static Dictionary<string, Tensor> BaseWeights(PeftModel peft) => peft.named_parameters()
        .Where(p => p.name.Contains(".base_layer.", StringComparison.Ordinal))
        .ToDictionary(p => p.name, p => p.parameter.detach().clone());
}
