using System.Reflection;
using System.Text.Json;
using System.Text.Json.Nodes;
using Peft.Checkpoints;
using Peft.Pretrained.Onnx;
using TorchSharp;

namespace Peft.Pretrained;

/// <summary>
/// An ImageNet-trained ResNet-18 available offline: the NuGet package Microsoft.ML.DnnImageFeaturizer.ResNet18 ships
/// it as ONNX (a CNTK export without its final fully connected layer: a 512-feature featurizer), and
/// <see cref="EnsureConverted"/> turns that into a Hugging Face model directory (config.json, model.safetensors,
/// preprocessor_config.json) that <c>PeftModels.LoadPretrained</c> reads as <c>model_type: "resnet"</c>. The
/// classifier (<c>classifier.1</c>) is not in the package: an image-classification head starts fresh.
/// </summary>
/// <remarks>
/// <para>
/// The package's model reads BGR images of 0–255 pixel values minus a mean image (its companion
/// <c>ResNetPreprocess.onnx</c>). The conversion reverses the stem's input channels, so the converted model reads RGB
/// as transformers' models do, and writes the mean image's per-channel means to preprocessor_config.json
/// (<c>do_rescale: false</c>, <c>image_mean</c> in 0–255 units, <c>image_std</c> 1): the model's own normalisation,
/// not ImageNet's 0–1 mean/std, which would feed it values about 60 times too small.
/// </para>
/// <para>
/// BatchNorm is kept as BatchNorm2d with its running statistics, as transformers' ResNet has it. The package is
/// downloaded without its dependencies (ML.NET, ONNX Runtime), and only its ONNX files are read.
/// </para>
/// </remarks>
public static class ResNet18Model
{
    /// <summary>The model's name, also the name of the directory <see cref="EnsureConverted"/> creates.</summary>
    public const string Name = "resnet-18-imagenet";

    /// <summary>The package's id.</summary>
    public const string PackageId = "Microsoft.ML.DnnImageFeaturizer.ResNet18";

    /// <summary>The featurizer's file name inside the package (tools/DnnImageModels/ResNet18Onnx/).</summary>
    public const string OnnxFileName = "ResNet18.onnx";

    /// <summary>The preprocessing graph's file name inside the package (tools/DnnImageModels/ResNetPrepOnnx/).</summary>
    public const string PreprocessFileName = "ResNetPreprocess.onnx";

    /// <summary>The Microsoft.ML.DnnImageFeaturizer.ResNet18 version this library was built against.</summary>
    public static string PackageVersion { get; } =
        typeof(ResNet18Model).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>()
            .FirstOrDefault(a => a.Key == "ResNet18PackageVersion")?.Value ?? "unknown";

    /// <summary>
    /// Returns <c>&lt;cacheDirectory&gt;/resnet-18-imagenet</c>, converting the packaged ONNX model into it first unless
    /// an earlier call already did (written to a temporary sibling and moved into place, so it is always complete).
    /// </summary>
    /// <param name="cacheDirectory">Where converted models are kept (created if missing).</param>
    /// <returns>The model directory: config.json, model.safetensors (float32, transformers' ResNet names) and preprocessor_config.json.</returns>
    /// <exception cref="FileNotFoundException">The package's files cannot be found (see <see cref="FindPackageFile"/>).</exception>
    /// <exception cref="InvalidDataException">The ONNX graph is not a ResNet this library can rebuild; the message says where.</exception>
    public static string EnsureConverted(string cacheDirectory) =>
        ConvertedModelCache.Ensure(cacheDirectory, Name, ["config.json", "model.safetensors", "preprocessor_config.json"],
            staging => Convert(FindPackageFile(OnnxFileName), FindPackageFile(PreprocessFileName), staging));

    /// <summary>
    /// A file of the package: next to the application (<see cref="AppContext.BaseDirectory"/>), next to this library
    /// (the project copies both ONNX files there), or in the NuGet package cache (<c>NUGET_PACKAGES</c> or <c>~/.nuget/packages</c>).
    /// </summary>
    /// <param name="fileName"><see cref="OnnxFileName"/> or <see cref="PreprocessFileName"/>.</param>
    /// <exception cref="FileNotFoundException">None of these places holds it; the message lists them.</exception>
    public static string FindPackageFile(string fileName) =>
        ConvertedModelCache.FindPackageFile(typeof(ResNet18Model), fileName, PackageId, PackageVersion,
            Path.Combine("tools", "DnnImageModels", fileName == PreprocessFileName ? "ResNetPrepOnnx" : "ResNet18Onnx"));

    /// <summary>The per-channel means (R, G, B, in 0–255 units) of the package's mean image, which its model subtracts.</summary>
    /// <param name="preprocessOnnx">The path of <see cref="PreprocessFileName"/>.</param>
    /// <exception cref="InvalidDataException">The graph has no (1, 3, H, W) float initializer.</exception>
    public static float[] ChannelMeans(string preprocessOnnx)
    {
        var graph = OnnxGraph.Parse(File.ReadAllBytes(preprocessOnnx));
        var mean = graph.Initializers.FirstOrDefault(t => t.Dims.Count == 4 && t.Dims[0] == 1 && t.Dims[1] == 3 && t.DataType == OnnxTensor.Float)
            ?? throw new InvalidDataException($"{preprocessOnnx}: no (1, 3, H, W) mean image among its initializers.");
        var values = mean.ToFloats();
        var plane = values.Length / 3;
        // Its planes are B, G, R (the graph swaps R and B before subtracting); report them as R, G, B.
        var bgr = Enumerable.Range(0, 3).Select(c => (float)values.Skip(c * plane).Take(plane).Average(v => (double)v)).ToArray();
        return [bgr[2], bgr[1], bgr[0]];
    }

    private static void Convert(string onnx, string preprocess, string directory)
    {
        Directory.CreateDirectory(directory);
        var resnet = OnnxResNetWeights.Convert(OnnxGraph.Parse(File.ReadAllBytes(onnx)));
        try
        {
            // BGR → RGB: the stem's kernel reads its input channels in reverse order.
            const string stem = "resnet.embedder.embedder.convolution.weight";
            var bgr = resnet.Weights[stem];
            resnet.Weights[stem] = bgr.flip(1).contiguous();
            bgr.Dispose();

            SafeTensors.Save(Path.Combine(directory, "model.safetensors"), resnet.Weights, new Dictionary<string, string>
            {
                ["format"] = "pt",
                ["source"] = $"{PackageId} {PackageVersion} ({OnnxFileName})",
            });
            Write(directory, "config.json", Config(resnet));
            Write(directory, "preprocessor_config.json", Preprocessor(ChannelMeans(preprocess)));
        }
        finally
        {
            foreach (var tensor in resnet.Weights.Values) tensor.Dispose();
        }
    }

    private static void Write(string directory, string file, JsonObject json) =>
        File.WriteAllText(Path.Combine(directory, file), json.ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n");

    /// <summary>A transformers ResNetConfig whose sizes come from the graph.</summary>
    private static JsonObject Config(OnnxResNet resnet) => new()
    {
        ["_name_or_path"] = Name,
        ["architectures"] = new JsonArray("ResNetModel"),
        ["model_type"] = "resnet",
        ["num_channels"] = 3,
        ["embedding_size"] = resnet.EmbeddingSize,
        ["hidden_sizes"] = new JsonArray([.. resnet.HiddenSizes.Select(h => JsonValue.Create(h))]),
        ["depths"] = new JsonArray([.. resnet.Depths.Select(d => JsonValue.Create(d))]),
        ["layer_type"] = resnet.LayerType,
        ["hidden_act"] = "relu",
        ["downsample_in_first_stage"] = resnet.DownsampleInFirstStage,
        ["downsample_in_bottleneck"] = false,
    };

    /// <summary>The model's own normalisation as a transformers image processor config (224 px, as the package's model was trained).</summary>
    private static JsonObject Preprocessor(float[] means) => new()
    {
        ["image_processor_type"] = "ConvNextImageProcessor",
        ["do_resize"] = true,
        ["size"] = new JsonObject { ["shortest_edge"] = 224 },
        ["crop_pct"] = 1.0,
        ["resample"] = 2,
        ["do_rescale"] = false,
        ["do_normalize"] = true,
        ["image_mean"] = new JsonArray([.. means.Select(m => JsonValue.Create(Math.Round(m, 4)))]),
        ["image_std"] = new JsonArray(1.0, 1.0, 1.0),
    };
}
