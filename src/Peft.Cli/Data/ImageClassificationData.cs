using System.Text.Json;
using Peft.Modeling;
using Peft.Pretrained;
using TorchSharp;

namespace Peft.Cli.Data;

/// <summary>
/// The pixel normalisation a model expects, from its preprocessor_config.json (transformers' image processors):
/// values are multiplied by <see cref="RescaleFactor"/> when rescaling, then <c>(x - mean) / std</c> per channel.
/// </summary>
/// <param name="Rescale">do_rescale.</param>
/// <param name="RescaleFactor">rescale_factor (1/255 by default).</param>
/// <param name="Mean">image_mean, one per channel.</param>
/// <param name="Std">image_std, one per channel.</param>
public sealed record ImageNormalization(bool Rescale, double RescaleFactor, IReadOnlyList<float> Mean, IReadOnlyList<float> Std)
{
    /// <summary>Reads <c>preprocessor_config.json</c> in <paramref name="modelDirectory"/>.</summary>
    /// <exception cref="DataFileException">The file is missing or lacks three-channel image_mean / image_std.</exception>
    public static ImageNormalization FromModel(string modelDirectory)
    {
        var path = Path.Combine(modelDirectory, "preprocessor_config.json");
        if (!File.Exists(path)) throw new DataFileException($"{modelDirectory} has no preprocessor_config.json; image fine-tuning reads image_mean and image_std from it.");
        using var json = JsonDocument.Parse(File.ReadAllText(path));
        var root = json.RootElement;
        float[] Channels(string key) =>
            root.TryGetProperty(key, out var value) && value.ValueKind == JsonValueKind.Array && value.GetArrayLength() == 3
                ? [.. value.EnumerateArray().Select(e => (float)e.GetDouble())]
                : throw new DataFileException($"{path}: '{key}' must list three channel values.");
        var rescale = !root.TryGetProperty("do_rescale", out var doRescale) || doRescale.GetBoolean();
        var factor = root.TryGetProperty("rescale_factor", out var f) ? f.GetDouble() : 1.0 / 255;
        var normalize = !root.TryGetProperty("do_normalize", out var doNormalize) || doNormalize.GetBoolean();
        return normalize ? new ImageNormalization(rescale, factor, Channels("image_mean"), Channels("image_std")) : new ImageNormalization(rescale, factor, [0, 0, 0], [1, 1, 1]);
    }
}

/// <summary>
/// Fashion-MNIST for the image job: a seeded subset per class, and batches of 28×28 grayscale images resized
/// bilinearly to <c>size</c>, replicated to three channels and normalised as the model expects.
/// </summary>
/// <param name="Labels">Class names in label order.</param>
/// <param name="Train">Training images (from the training file).</param>
/// <param name="Test">Test images (from the test file, never used to pick anything).</param>
/// <param name="Source">Where the data came from, for reports.</param>
public sealed record ImageClassificationData(IReadOnlyList<string> Labels, IReadOnlyList<LabeledImage> Train, IReadOnlyList<LabeledImage> Test, string Source)
{
    /// <summary>
    /// <paramref name="trainPerClass"/> training images per class and, per class, a test share of
    /// <paramref name="testFraction"/> of train + test (at least one).
    /// </summary>
    public static ImageClassificationData FromFashionMnist(int trainPerClass, double testFraction, int seed)
    {
        var testPerClass = trainPerClass == 0 ? 0 : Math.Max(1, (int)Math.Round(trainPerClass * testFraction / (1 - testFraction)));
        var data = FashionMnistDataset.Load(trainPerClass, testPerClass, seed);
        return new ImageClassificationData(FashionMnistDataset.Labels, data.Train, data.Test, "Fashion-MNIST");
    }

    /// <summary>Turns a batch into <c>pixel_values</c> (B, 3, size, size) and labels.</summary>
    public static Func<IReadOnlyList<LabeledImage>, ModelInputs> Collator(ImageNormalization normalization, int size) => batch =>
    {
        var (height, width) = (batch[0].Height, batch[0].Width);
        var values = new float[batch.Count * height * width];
        for (var i = 0; i < batch.Count; i++)
        {
            if (batch[i].Height != height || batch[i].Width != width) throw new DataFileException($"Images of one batch differ in size ({height}×{width} and {batch[i].Height}×{batch[i].Width}).");
            for (var p = 0; p < height * width; p++) values[i * height * width + p] = batch[i].Pixels[p];
        }
        var pixels = torch.tensor(values, [batch.Count, 1, height, width]);
        if (normalization.Rescale) pixels = pixels * normalization.RescaleFactor;
        if (height != size || width != size)
        {
            pixels = torch.nn.functional.interpolate(pixels, size: [size, size], mode: torch.InterpolationMode.Bilinear, align_corners: false);
        }
        var mean = torch.tensor(normalization.Mean.ToArray()).view(1, 3, 1, 1);
        var std = torch.tensor(normalization.Std.ToArray()).view(1, 3, 1, 1);
        return new ModelInputs
        {
            PixelValues = (pixels.expand(-1, 3, -1, -1) - mean) / std,                  // grayscale replicated to RGB
            Labels = torch.tensor(batch.Select(i => (long)i.Label).ToArray()),
        };
    };
}
