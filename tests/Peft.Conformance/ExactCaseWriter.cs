using System.Text.Json;
using Peft.Checkpoints;
using Peft.Modeling;
using TorchSharp;
using static TorchSharp.torch;

namespace Peft.Conformance;

/// <summary>
/// Writes a case laid out like the reference fixtures whose expected values are our own model's in float64:
/// an oracle of exactness for sizes the reference cases do not cover. The default (float32) run of such a case
/// shows where our float32 loses accuracy; it says nothing about agreement with Hugging Face PEFT.
/// </summary>
/// <param name="models">The models and plugins to use (the built-in ones when null).</param>
public sealed class ExactCaseWriter(PeftModels? models = null)
{
    private readonly PeftModels _models = models ?? PeftModels.Default;

    /// <summary>
    /// Writes <c>cases/&lt;caseName&gt;/</c> under <paramref name="fixturesDirectory"/>: <paramref name="adapter"/> saved
    /// as the adapter, <c>io.safetensors</c> with <paramref name="inputs"/> and the float64 values (stored as float32,
    /// as the reference stores its own), and <c>meta.json</c>. The base model must already be in
    /// <c>models/&lt;modelName&gt;/</c>. Merging and generation are not recorded.
    /// </summary>
    /// <param name="fixturesDirectory">The fixtures root.</param>
    /// <param name="modelName">The folder under <c>models/</c> the adapter was made on.</param>
    /// <param name="caseName">The new case's folder name.</param>
    /// <param name="adapter">The adapted model (its active adapter is saved).</param>
    /// <param name="inputs">The batch, with labels.</param>
    public void Write(string fixturesDirectory, string modelName, string caseName, PeftModel adapter, ModelInputs inputs)
    {
        using var scope = torch.NewDisposeScope();
        var caseDirectory = Path.Combine(fixturesDirectory, "cases", caseName);
        var adapterDirectory = Path.Combine(caseDirectory, "adapter");
        adapter.SavePretrained(adapterDirectory);
        var modelDirectory = Path.Combine(fixturesDirectory, "models", modelName);
        var task = adapter.Model.Task;
        var io = new Dictionary<string, Tensor>();
        foreach (var (key, value) in InputEntries(inputs)) io[key] = value;

        var precise = ConformanceRunner.ToFloat64(inputs);
        var evalInputs = precise with { Labels = null };
        var peft = LoadFloat64(modelDirectory, task, adapterDirectory, out var baseLogits, evalInputs);
        io["output.base_logits"] = baseLogits;
        peft.eval();
        io["output.peft_logits"] = peft.call(evalInputs).Logits;
        using (peft.DisableAdapter()) io["output.disabled_logits"] = peft.call(evalInputs).Logits;
        ConformanceRunner.TrainWithoutDropout(peft);
        var loss = ConformanceRunner.LossOf(peft.call(precise), task) ?? throw new InvalidOperationException("the model returned no loss");
        loss.backward();
        io["output.loss"] = loss.detach().reshape(1);
        foreach (var (name, parameter) in peft.TrainableParameters()) io["grad." + name] = parameter.grad!;

        var trained = LoadFloat64(modelDirectory, task, adapterDirectory, out _, null);
        var (losses, state) = ConformanceRunner.RunAdamW(trained, task, precise);
        io["train.losses"] = torch.tensor(losses);
        foreach (var (name, value) in state) io["train.final." + name] = value;

        SafeTensors.Save(Path.Combine(caseDirectory, "io.safetensors"),
            io.Select(e => KeyValuePair.Create(e.Key, e.Value.is_floating_point() ? e.Value.detach().to(ScalarType.Float32).contiguous() : e.Value.contiguous())));
        var meta = new Dictionary<string, object?>
        {
            ["model"] = modelName,
            ["method"] = adapter.PeftConfig.PeftType.ToString(),
            ["task_type"] = task.ToString(),
            ["print_trainable_parameters"] = adapter.TrainableParametersLine(),
            ["merge"] = null,
            ["base_model_dir"] = $"models/{modelName}",
            ["oracle"] = "this library in float64 (ExactCaseWriter), not Hugging Face PEFT",
        };
        File.WriteAllText(Path.Combine(caseDirectory, "meta.json"), JsonSerializer.Serialize(meta, new JsonSerializerOptions { WriteIndented = true }));
    }

    private PeftModel LoadFloat64(string modelDirectory, TaskType task, string adapterDirectory, out Tensor baseLogits, ModelInputs? baseInputs)
    {
        // The float32 run's attention path, so that the oracle differs from it in precision only.
        var model = _models.LoadPretrained(modelDirectory, task, ConformanceRunner.WithFloat32Attention);
        model.to(ScalarType.Float64);
        baseLogits = baseInputs is null ? torch.empty(0) : model.call(baseInputs).Logits;
        var peft = _models.FromPretrained(model, adapterDirectory, isTrainable: true);
        peft.to(ScalarType.Float64);
        return peft;
    }

    private static IEnumerable<(string Key, Tensor Value)> InputEntries(ModelInputs inputs)
    {
        (string, Tensor?)[] entries =
        [
            ("input.input_ids", inputs.InputIds), ("input.attention_mask", inputs.AttentionMask), ("input.labels", inputs.Labels),
            ("input.decoder_input_ids", inputs.DecoderInputIds), ("input.decoder_attention_mask", inputs.DecoderAttentionMask),
            ("input.pixel_values", inputs.PixelValues), ("input.bbox", inputs.Bbox), ("input.token_type_ids", inputs.TokenTypeIds),
        ];
        foreach (var (key, value) in entries)
        {
            if (value is not null) yield return (key, value);
        }
    }
}
