using System.Globalization;
using System.Text.Json.Nodes;

namespace Peft.Cli.Data;

/// <summary>
/// The label names of a classifier adapter, kept as transformers keeps them: <c>id2label</c> and
/// <c>label2id</c> in a <c>config.json</c> beside the adapter (the base model's config with the
/// trained head's labels, what <c>model.config.save_pretrained(dir)</c> writes). PEFT itself reads
/// only adapter_config.json there, so Python loads the folder as before, and
/// <c>AutoConfig.from_pretrained(dir).id2label</c> gives the names.
/// </summary>
public static class AdapterLabels
{
    /// <summary>Writes <paramref name="labels"/> (index order) into <paramref name="adapterDirectory"/>/config.json, based on the model's config.json.</summary>
    public static void Save(string adapterDirectory, string modelDirectory, IReadOnlyList<string> labels)
    {
        var source = Path.Combine(modelDirectory, "config.json");
        var config = File.Exists(source) ? JsonNode.Parse(File.ReadAllText(source))?.AsObject() ?? [] : [];
        var id2label = new JsonObject();
        var label2id = new JsonObject();
        for (int i = 0; i < labels.Count; i++)
        {
            id2label[i.ToString(CultureInfo.InvariantCulture)] = labels[i];
            label2id[labels[i]] = i;
        }
        config["id2label"] = id2label;
        config["label2id"] = label2id;
        config.Remove("num_labels");
        File.WriteAllText(Path.Combine(adapterDirectory, "config.json"), config.ToJsonString(PeftJson.Options));
    }

    /// <summary>The label names saved beside an adapter (index order), or null when there are none.</summary>
    /// <exception cref="DataFileException">The config.json there is malformed or its id2label does not number the labels 0..n-1.</exception>
    public static IReadOnlyList<string>? Read(string adapterDirectory) => ReadConfig(Path.Combine(adapterDirectory, "config.json"));

    /// <summary>The <c>id2label</c> names of a config.json (index order), or null when it has none.</summary>
    public static IReadOnlyList<string>? ReadConfig(string path)
    {
        if (!File.Exists(path)) return null;
        JsonObject? config;
        try
        {
            config = JsonNode.Parse(File.ReadAllText(path)) as JsonObject;
        }
        catch (System.Text.Json.JsonException e)
        {
            throw new DataFileException($"{path}: not valid JSON ({e.Message})");
        }
        if (config?["id2label"] is not JsonObject id2label || id2label.Count == 0) return null;
        var names = new string[id2label.Count];
        foreach (var (key, value) in id2label)
        {
            if (!int.TryParse(key, NumberStyles.None, CultureInfo.InvariantCulture, out var id) || id >= names.Length || names[id] is not null)
            {
                throw new DataFileException($"{path}: id2label key '{key}' is not one of 0..{names.Length - 1}.");
            }
            names[id] = value?.ToString() ?? throw new DataFileException($"{path}: id2label '{key}' has no name.");
        }
        return names;
    }
}
