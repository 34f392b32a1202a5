using System.Text.Json;
using Peft.Checkpoints;
using Peft.Diffusion.Unet2DCondition;
using Peft.Modeling;
using TorchSharp;

namespace Peft.Diffusion;

/// <summary>Loads diffusers' model folders (<c>config.json</c> with <c>_class_name</c>, <c>diffusion_pytorch_model.safetensors</c>).</summary>
public static class DiffusersModels
{
    /// <summary>diffusers' weights file name.</summary>
    public const string WeightsFileName = "diffusion_pytorch_model.safetensors";

    /// <summary>diffusers' index of a sharded checkpoint.</summary>
    public const string IndexFileName = "diffusion_pytorch_model.safetensors.index.json";

    /// <summary>
    /// Builds a UNet from <paramref name="directory"/> (a pipeline's <c>unet/</c> folder) and loads its weights by name,
    /// on the CPU in <paramref name="dtype"/> (float32 by default), in eval mode. Every weight the model has must be in the
    /// file with its shape.
    /// </summary>
    /// <param name="directory">The folder with config.json and diffusion_pytorch_model.safetensors.</param>
    /// <param name="configure">Adjusts the config before building.</param>
    /// <param name="dtype">The parameters' dtype (the file's values are converted).</param>
    /// <exception cref="ModelConfigException">config.json is missing, is not a UNet2DConditionModel's, or names an option not built here.</exception>
    /// <exception cref="CheckpointException">A weight is missing or has another shape.</exception>
    public static UNet2DConditionModel LoadUnet(string directory, Func<UNet2DConditionConfig, UNet2DConditionConfig>? configure = null, torch.ScalarType dtype = torch.ScalarType.Float32)
    {
        var path = Path.Combine(directory, "config.json");
        var config = ReadUnetConfig(path);
        if (configure is not null)
        {
            config = configure(config);
            config.Validate(path);
        }
        var weights = Path.Combine(directory, WeightsFileName);
        if (!File.Exists(weights))
        {
            throw new CheckpointException(weights, "", File.Exists(Path.Combine(directory, IndexFileName))
                ? "sharded diffusers checkpoints are not read yet; merge the shards into one file."
                : $"not found; a diffusers UNet folder needs {WeightsFileName} (the .bin pickle is not read).");
        }
        var model = new UNet2DConditionModel(config) { NameOrPath = directory };
        try
        {
            using var scope = torch.NewDisposeScope();
            PeftModels.LoadWeights(model, SafeTensors.Load(weights), weights);
        }
        catch
        {
            model.Dispose();
            throw;
        }
        if (dtype != torch.ScalarType.Float32) model.to(dtype);
        model.eval();
        return model;
    }

    /// <summary>Reads a UNet's config.json, refusing another diffusers class by name.</summary>
    /// <exception cref="ModelConfigException">The file is missing, unreadable, or describes another class.</exception>
    public static UNet2DConditionConfig ReadUnetConfig(string path)
    {
        if (!File.Exists(path)) throw new ModelConfigException($"{path}: not found.");
        using var document = JsonDocument.Parse(File.ReadAllBytes(path), new JsonDocumentOptions { AllowTrailingCommas = true });
        var root = document.RootElement;
        if (root.TryGetProperty("_class_name", out var name) && name.GetString() != UNet2DConditionConfig.ClassName)
        {
            throw new ModelConfigException($"{path} at key '_class_name': '{name.GetString()}' is not supported (only {UNet2DConditionConfig.ClassName}).");
        }
        return (UNet2DConditionConfig)UNet2DConditionArchitecture.Instance.ParseConfig(root, path);
    }

    /// <summary>Writes <paramref name="model"/> as a diffusers folder (config.json with <c>_class_name</c>, safetensors weights).</summary>
    public static void SaveUnet(UNet2DConditionModel model, string directory)
    {
        ArgumentNullException.ThrowIfNull(model);
        Directory.CreateDirectory(directory);
        var config = System.Text.Json.Nodes.JsonNode.Parse(JsonSerializer.Serialize(model.Unet, PeftJson.Options))!.AsObject();
        // diffusers names the class instead of a model_type, and transformers' shared keys mean nothing to it.
        foreach (var key in new[] { "model_type", "architectures", "vocab_size", "pad_token_id", "bos_token_id", "eos_token_id", "tie_word_embeddings", "num_labels", "id2label", "decoder_start_token_id" })
        {
            config.Remove(key);
        }
        config["_class_name"] = UNet2DConditionConfig.ClassName;
        File.WriteAllText(Path.Combine(directory, "config.json"), config.ToJsonString(PeftJson.Options));
        var weights = model.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.detach().cpu().contiguous());
        SafeTensors.Save(Path.Combine(directory, WeightsFileName), weights, new Dictionary<string, string> { ["format"] = "pt" });
    }
}
