using Microsoft.Extensions.DependencyInjection;
using Peft;
using Peft.Checkpoints;
using Peft.Modeling;
using ThirdPartyPlugin.ScaleShift;
using ThirdPartyPlugin.TinyMixer;
using TorchSharp;
using static TorchSharp.torch;

namespace ThirdPartyPlugin.Tests;

/// <summary>The host set-up a third party's application would have.</summary>
internal static class Plugins
{
    /// <summary>Built-in plugins plus this sample's, as the sample's README shows.</summary>
    public static ServiceProvider Provider()
    {
        var services = new ServiceCollection();
        services.AddPeft(p => p
            .AddBuiltInMethods()
            .AddBuiltInBackbones()
            .AddMethod<ScaleShiftMethod>()
            .AddBackbone<TinyMixerArchitecture>());
        return services.BuildServiceProvider();
    }
}

/// <summary>A tiny-mixer checkpoint on disk (config.json + model.safetensors), as a Hugging Face model directory.</summary>
internal sealed class TinyMixerCheckpoint : IDisposable
{
    public const string ConfigJson = """
        {
          "model_type": "tiny-mixer",
          "architectures": ["TinyMixerForSequenceClassification"],
          "vocab_size": 64,
          "hidden_size": 32,
          "intermediate_size": 64,
          "num_hidden_layers": 2,
          "hidden_act": "gelu",
          "layer_norm_eps": 1e-5,
          "num_labels": 2,
          "pad_token_id": 0
        }
        """;

    private readonly ScratchDirectory _directory = new();

    /// <summary>Writes a randomly initialised model (seeded) through the architecture the registry resolves.</summary>
    public TinyMixerCheckpoint(PeftModels models, long seed = 0)
    {
        File.WriteAllText(System.IO.Path.Combine(Path, "config.json"), ConfigJson);
        torch.manual_seed(seed);
        var (architecture, config) = models.ReadConfig(Path);
        using var model = architecture.Build(config, TaskType.SequenceClassification);
        ModelWeights.Save(Path, model.state_dict());
    }

    public string Path => _directory.Path;

    public void Dispose() => _directory.Dispose();
}

/// <summary>A directory deleted on dispose.</summary>
internal sealed class ScratchDirectory : IDisposable
{
    public ScratchDirectory()
    {
        Path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "peft-sample-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(Path);
    }

    public string Path { get; }

    public void Dispose()
    {
        try { Directory.Delete(Path, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}

/// <summary>
/// A balanced toy task: odd-length sequences of tokens 1..63 (0 pads); the label says whether most
/// tokens are below 32. Learnable from the mean of the token embeddings.
/// </summary>
internal static class MajorityTask
{
    public const int MaxLength = 9;

    public static List<(long[] Ids, long Label)> Data(int count, int seed)
    {
        var random = new Random(seed);
        return Enumerable.Range(0, count).Select(_ =>
        {
            var ids = Enumerable.Range(0, 5 + 2 * random.Next(0, 3)).Select(_ => (long)random.Next(1, 64)).ToArray();
            return (ids, ids.Count(t => t < 32) * 2 > ids.Length ? 1L : 0L);
        }).ToList();
    }

    /// <summary>Right-padded ids, the padding mask, and the labels.</summary>
    public static ModelInputs Collate(IReadOnlyList<(long[] Ids, long Label)> batch)
    {
        var ids = new long[batch.Count * MaxLength];
        var mask = new long[batch.Count * MaxLength];
        for (int i = 0; i < batch.Count; i++)
        {
            for (int t = 0; t < batch[i].Ids.Length; t++)
            {
                ids[i * MaxLength + t] = batch[i].Ids[t];
                mask[i * MaxLength + t] = 1;
            }
        }
        return new ModelInputs
        {
            InputIds = torch.tensor(ids, [batch.Count, MaxLength]),
            AttentionMask = torch.tensor(mask, [batch.Count, MaxLength]),
            Labels = torch.tensor(batch.Select(b => b.Label).ToArray()),
        };
    }

    /// <summary>The largest absolute difference between two tensors.</summary>
    public static double MaxDiff(Tensor a, Tensor b) => (a - b).abs().max().item<float>();
}
