using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Nodes;
using TorchSharp;

namespace Peft.Checkpoints;

/// <summary>
/// Reads and writes a Hugging Face model directory's weights: a single <c>model.safetensors</c>, or shards
/// <c>model-0000i-of-0000n.safetensors</c> listed by <c>model.safetensors.index.json</c>.
/// </summary>
public static class ModelWeights
{
    /// <summary>The single-file weights name.</summary>
    public const string SingleFileName = "model.safetensors";

    /// <summary>The shard index name.</summary>
    public const string IndexFileName = "model.safetensors.index.json";

    private static readonly Dictionary<string, string> ShardMetadata = new() { ["format"] = "pt" };

    /// <summary>
    /// Loads the weights of <paramref name="modelDirectory"/>: through <c>model.safetensors.index.json</c> and its shards
    /// when the index exists, otherwise from <c>model.safetensors</c>. Every shard's header is validated before any
    /// tensor is allocated.
    /// </summary>
    /// <param name="modelDirectory">The model directory.</param>
    /// <returns>Every weight by name, on the CPU in its stored dtype; the caller owns them.</returns>
    /// <exception cref="CheckpointException">No weights are found, the index is malformed or names a missing shard or key, or a file is invalid.</exception>
    public static Dictionary<string, torch.Tensor> Load(string modelDirectory)
    {
        ArgumentNullException.ThrowIfNull(modelDirectory);
        if (!Directory.Exists(modelDirectory))
        {
            throw new CheckpointException(modelDirectory, null, "model directory not found.");
        }
        var indexPath = Path.Combine(modelDirectory, IndexFileName);
        if (File.Exists(indexPath))
        {
            return LoadSharded(modelDirectory, indexPath);
        }
        var singlePath = Path.Combine(modelDirectory, SingleFileName);
        if (!File.Exists(singlePath))
        {
            throw new CheckpointException(singlePath, null, $"file not found (and there is no {IndexFileName} beside it).");
        }
        return SafeTensors.Load(singlePath);
    }

    /// <summary>
    /// Writes <paramref name="weights"/> the way <c>save_pretrained</c> does: one <c>model.safetensors</c> when the total
    /// fits in <paramref name="maxShardBytes"/>, otherwise shards of at most <paramref name="maxShardBytes"/> each
    /// (a larger single tensor gets a shard of its own), in the weights' order, plus
    /// <c>model.safetensors.index.json</c> (<c>{"metadata": {"total_size": N}, "weight_map": {name: file}}</c>).
    /// Weights files of the other layout left from an earlier save are removed so they cannot shadow this one.
    /// </summary>
    /// <param name="modelDirectory">The model directory (created if needed).</param>
    /// <param name="weights">The weights by name.</param>
    /// <param name="maxShardBytes">The largest shard, in bytes of tensor data (5 GiB by default).</param>
    /// <exception cref="CheckpointException">A tensor cannot be stored or a file cannot be written.</exception>
    public static void Save(string modelDirectory, IReadOnlyDictionary<string, torch.Tensor> weights, long maxShardBytes = 5L << 30)
    {
        ArgumentNullException.ThrowIfNull(modelDirectory);
        ArgumentNullException.ThrowIfNull(weights);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(maxShardBytes);
        try
        {
            Directory.CreateDirectory(modelDirectory);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException or NotSupportedException)
        {
            throw new CheckpointException(modelDirectory, null, $"cannot create the model directory: {e.Message}", e);
        }

        // Split as huggingface_hub's split_torch_state_dict_into_shards does: in order, a new shard when the next
        // tensor would overflow the current one.
        var shards = new List<List<KeyValuePair<string, torch.Tensor>>>();
        var current = new List<KeyValuePair<string, torch.Tensor>>();
        long currentBytes = 0, totalBytes = 0;
        foreach (var pair in weights)
        {
            var bytes = pair.Value.NumberOfElements * pair.Value.ElementSize;
            if (current.Count > 0 && currentBytes + bytes > maxShardBytes)
            {
                shards.Add(current);
                current = [];
                currentBytes = 0;
            }
            current.Add(pair);
            currentBytes += bytes;
            totalBytes += bytes;
        }
        if (current.Count > 0 || shards.Count == 0)
        {
            shards.Add(current);
        }

        var indexPath = Path.Combine(modelDirectory, IndexFileName);
        var singlePath = Path.Combine(modelDirectory, SingleFileName);
        var stale = StaleShards(modelDirectory);
        if (shards.Count == 1)
        {
            SafeTensors.Save(singlePath, shards[0], ShardMetadata);
            DeleteAll(stale.Append(indexPath));
            return;
        }

        var weightMap = new SortedDictionary<string, string>(StringComparer.Ordinal);
        var written = new List<string>();
        for (var i = 0; i < shards.Count; i++)
        {
            var fileName = $"model-{i + 1:D5}-of-{shards.Count:D5}.safetensors";
            var shardPath = Path.Combine(modelDirectory, fileName);
            SafeTensors.Save(shardPath, shards[i], ShardMetadata);
            written.Add(Path.GetFullPath(shardPath));
            foreach (var (name, _) in shards[i])
            {
                weightMap[name] = fileName;
            }
        }

        var index = new JsonObject
        {
            ["metadata"] = new JsonObject { ["total_size"] = totalBytes },
            ["weight_map"] = new JsonObject(weightMap.Select(p => KeyValuePair.Create(p.Key, (JsonNode?)JsonValue.Create(p.Value)))),
        };
        var json = index.ToJsonString(new JsonSerializerOptions { WriteIndented = true, Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping }) + "\n";
        try
        {
            File.WriteAllText(indexPath, json);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new CheckpointException(indexPath, null, $"cannot be written: {e.Message}", e);
        }
        DeleteAll(stale.Where(p => !written.Contains(Path.GetFullPath(p), StringComparer.Ordinal)).Append(singlePath));
    }

    private static Dictionary<string, torch.Tensor> LoadSharded(string modelDirectory, string indexPath)
    {
        var shards = ReadShards(modelDirectory, indexPath);
        var result = new Dictionary<string, torch.Tensor>(StringComparer.Ordinal);
        try
        {
            foreach (var (path, header, names) in shards)
            {
                using var handle = SafeTensors.Open(path);
                foreach (var (name, tensor) in SafeTensors.LoadTensors(path, handle, header, names))
                {
                    result.Add(name, tensor);
                }
            }
            return result;
        }
        catch
        {
            foreach (var tensor in result.Values)
            {
                tensor.Dispose();
            }
            throw;
        }
    }

    /// <summary>
    /// The files of <paramref name="modelDirectory"/>'s weights with their validated headers and the names each
    /// provides: every shard the index names (checked to hold the keys the index puts there), or the single file.
    /// Nothing beyond the headers is read.
    /// </summary>
    /// <exception cref="CheckpointException">No weights are found, the index is malformed or names a missing shard or key, or a header is invalid.</exception>
    internal static List<(string Path, SafeTensorsHeader Header, List<string> Names)> ReadShards(string modelDirectory)
    {
        ArgumentNullException.ThrowIfNull(modelDirectory);
        if (!Directory.Exists(modelDirectory))
        {
            throw new CheckpointException(modelDirectory, null, "model directory not found.");
        }
        var indexPath = Path.Combine(modelDirectory, IndexFileName);
        if (File.Exists(indexPath))
        {
            return ReadShards(modelDirectory, indexPath);
        }
        var singlePath = Path.Combine(modelDirectory, SingleFileName);
        if (!File.Exists(singlePath))
        {
            throw new CheckpointException(singlePath, null, $"file not found (and there is no {IndexFileName} beside it).");
        }
        var header = SafeTensors.ReadHeader(singlePath);
        return [(singlePath, header, header.Tensors.Keys.ToList())];
    }

    private static List<(string Path, SafeTensorsHeader Header, List<string> Names)> ReadShards(string modelDirectory, string indexPath)
    {
        var weightMap = ReadWeightMap(indexPath);

        // Validate every shard's header, and that it holds the keys the index puts there, before allocating anything.
        var shards = new Dictionary<string, (string Path, SafeTensorsHeader Header, List<string> Names)>(StringComparer.Ordinal);
        foreach (var (name, file) in weightMap)
        {
            if (!shards.TryGetValue(file, out var shard))
            {
                if (file.Length == 0 || Path.GetFileName(file) != file || file is "." or "..")
                {
                    throw new CheckpointException(indexPath, name, $"shard '{file}' must be a file name in the model directory.");
                }
                var shardPath = Path.Combine(modelDirectory, file);
                if (!File.Exists(shardPath))
                {
                    throw new CheckpointException(indexPath, name, $"names shard '{file}', which is missing ({shardPath}).");
                }
                shard = (shardPath, SafeTensors.ReadHeader(shardPath), []);
                shards.Add(file, shard);
            }
            if (!shard.Header.Tensors.ContainsKey(name))
            {
                throw new CheckpointException(shard.Path, name, $"the tensor is not in this shard, though {IndexFileName} maps it here.");
            }
            shard.Names.Add(name);
        }
        return shards.Values.ToList();
    }

    private static Dictionary<string, string> ReadWeightMap(string indexPath)
    {
        JsonNode? root;
        try
        {
            root = JsonNode.Parse(File.ReadAllBytes(indexPath));
        }
        catch (JsonException e)
        {
            throw new CheckpointException(indexPath, null, $"is not valid JSON: {e.Message}", e);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new CheckpointException(indexPath, null, $"cannot be read: {e.Message}", e);
        }
        if (root is not JsonObject rootObject)
        {
            throw new CheckpointException(indexPath, null, "must be a JSON object.");
        }
        if (rootObject["weight_map"] is not JsonObject map)
        {
            throw new CheckpointException(indexPath, null, "has no \"weight_map\" object.");
        }
        var weightMap = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var (name, value) in map)
        {
            if (value is not JsonValue file || !file.TryGetValue<string>(out var fileName))
            {
                throw new CheckpointException(indexPath, name, "the weight_map entry must be a shard file name (a string).");
            }
            weightMap[name] = fileName;
        }
        return weightMap;
    }

    private static List<string> StaleShards(string modelDirectory) =>
        Directory.EnumerateFiles(modelDirectory, "model-*-of-*.safetensors").ToList();

    private static void DeleteAll(IEnumerable<string> paths)
    {
        foreach (var path in paths)
        {
            try
            {
                File.Delete(path);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                throw new CheckpointException(path, null, $"stale weights file cannot be removed: {e.Message}", e);
            }
        }
    }
}
