// Issue 20, measure 4: saving and loading GPT-2's all-linear r = 16 adapter, and loading the GPT-2 124M checkpoint
// (written once to the temp folder) against a warm raw read of the same file, interleaved in one run.
using System.Text.Json.Nodes;
using Peft;
using Peft.Checkpoints;
using Peft.Methods.Lora;
using Peft.Modeling;
using TorchSharp;

internal static class AdapterIo
{
    public static Dictionary<string, object> Run()
    {
        var root = Path.Combine(Path.GetTempPath(), "peft-bench-io");
        var modelDirectory = Path.Combine(root, "gpt2");
        var adapterDirectory = Path.Combine(root, "adapter");
        var model = Shapes.Build("gpt2");
        WriteCheckpoint(model, modelDirectory);
        var peft = PeftModels.Default.GetPeftModel(model, Shapes.LoraFor("gpt2") with { TaskType = TaskType.CausalLM, InitLoraWeights = LoraInitWeights.Random });
        var target = Shapes.Build("gpt2");
        var buffer = new byte[16 << 20];
        var weights = Path.Combine(modelDirectory, "model.safetensors");
        var ms = Measure.Interleaved(1, 3,
            ("adapter_save", () => peft.SavePretrained(adapterDirectory)),
            ("adapter_load", () => PeftModels.Default.FromPretrained(target, adapterDirectory).Unload()),
            ("raw_read", () => ReadAll(weights, buffer)),
            ("checkpoint_load", () => PeftModels.Default.LoadPretrained(modelDirectory, TaskType.CausalLM).Dispose()),
            ("checkpoint_load_low_memory", () => PeftModels.Default.LoadPretrained(modelDirectory, TaskType.CausalLM, new ModelLoadOptions { LowCpuMemoryUsage = true }).Dispose()));
        return new()
        {
            ["adapter_bytes"] = new FileInfo(Path.Combine(adapterDirectory, "adapter_model.safetensors")).Length,
            ["adapter_save_ms"] = ms["adapter_save"],
            ["adapter_load_ms"] = ms["adapter_load"],
            ["checkpoint_bytes"] = new FileInfo(weights).Length,
            ["raw_read_ms"] = ms["raw_read"],
            ["checkpoint_load_over_raw_read"] = ms["checkpoint_load"] / ms["raw_read"],
            ["checkpoint_load_low_memory_over_raw_read"] = ms["checkpoint_load_low_memory"] / ms["raw_read"],
        };
    }

    private static void ReadAll(string file, byte[] buffer)
    {
        using var stream = new FileStream(file, FileMode.Open, FileAccess.Read, FileShare.Read, 1, FileOptions.SequentialScan);
        while (stream.Read(buffer, 0, buffer.Length) > 0)
        {
        }
    }

    /// <summary>config.json and model.safetensors of the random GPT-2 (the tied head is left out, as transformers saves it).</summary>
    private static void WriteCheckpoint(PreTrainedModel model, string directory)
    {
        if (File.Exists(Path.Combine(directory, "model.safetensors"))) return;
        Directory.CreateDirectory(directory);
        var config = new JsonObject
        {
            ["model_type"] = "gpt2", ["architectures"] = new JsonArray("GPT2LMHeadModel"), ["vocab_size"] = 50257, ["n_embd"] = 768,
            ["n_head"] = 12, ["n_layer"] = 12, ["n_positions"] = 1024, ["tie_word_embeddings"] = true,
        };
        File.WriteAllText(Path.Combine(directory, "config.json"), config.ToJsonString());
        var weights = model.state_dict().Where(kv => kv.Key != "lm_head.weight").ToDictionary(kv => kv.Key, kv => kv.Value.detach().contiguous());
        ModelWeights.Save(directory, weights);
    }
}
