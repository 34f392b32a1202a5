namespace Peft.Pretrained;

/// <summary>One image: its grayscale pixels (row-major, 0 = background) and the index of its class.</summary>
/// <param name="Pixels">Height × width bytes.</param>
/// <param name="Height">Rows.</param>
/// <param name="Width">Columns.</param>
/// <param name="Label">The class index in <see cref="FashionMnistDataset.Labels"/>.</param>
public sealed record LabeledImage(byte[] Pixels, int Height, int Width, int Label);

/// <summary>
/// Zalando's Fashion-MNIST (28×28 grayscale images of 10 kinds of clothing, 60,000 for training and 10,000 for
/// testing) from Debian's <c>dataset-fashion-mnist</c> package, which installs the four idx files (gzip'd) under
/// <see cref="DefaultDirectory"/>.
/// </summary>
/// <remarks>
/// A subset is drawn per class with a generator seeded from <c>seed</c>: the first <c>perClass</c> images of each
/// class after a seeded shuffle of that class's indices, from the training file for training and from the test
/// file for testing, so the two never share an image. The same arguments and files always give the same subset.
/// </remarks>
public sealed class FashionMnistDataset
{
    /// <summary>Where Debian's <c>dataset-fashion-mnist</c> installs the files.</summary>
    public const string DefaultDirectory = "/usr/share/datasets/fashion-mnist";

    /// <summary>The Debian package that provides the files.</summary>
    public const string DebianPackage = "dataset-fashion-mnist";

    /// <summary>The class names, in label order (the dataset's own).</summary>
    public static IReadOnlyList<string> Labels { get; } =
        ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"];

    private FashionMnistDataset(IReadOnlyList<LabeledImage> train, IReadOnlyList<LabeledImage> test)
    {
        Train = train;
        Test = test;
    }

    /// <summary>The training images (from the training file), shuffled deterministically.</summary>
    public IReadOnlyList<LabeledImage> Train { get; }

    /// <summary>The test images (from the test file), in class order.</summary>
    public IReadOnlyList<LabeledImage> Test { get; }

    /// <summary>Loads a seeded subset.</summary>
    /// <param name="trainPerClass">Training images per class (0: all).</param>
    /// <param name="testPerClass">Test images per class (0: all).</param>
    /// <param name="seed">Seeds the draws.</param>
    /// <param name="directory">Where the idx files are; <see cref="DefaultDirectory"/> when null.</param>
    /// <exception cref="FileNotFoundException">A file is missing; the message names the package that provides it.</exception>
    /// <exception cref="InvalidDataException">A file is not the idx array it should be, or images and labels disagree.</exception>
    public static FashionMnistDataset Load(int trainPerClass, int testPerClass, int seed, string? directory = null)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(trainPerClass);
        ArgumentOutOfRangeException.ThrowIfNegative(testPerClass);
        directory ??= DefaultDirectory;
        var train = Draw(ReadSplit(directory, "train"), trainPerClass, new Random(seed));
        var test = Draw(ReadSplit(directory, "t10k"), testPerClass, new Random(seed + 1));
        new Random(seed).Shuffle(train);
        return new FashionMnistDataset(train, test);
    }

    private static LabeledImage[] Draw(IReadOnlyList<LabeledImage> images, int perClass, Random random)
    {
        var drawn = new List<LabeledImage>();
        for (var label = 0; label < Labels.Count; label++)
        {
            var ofClass = images.Where(i => i.Label == label).ToArray();
            random.Shuffle(ofClass);
            drawn.AddRange(perClass > 0 && ofClass.Length > perClass ? ofClass[..perClass] : ofClass);
        }
        return [.. drawn];
    }

    private static List<LabeledImage> ReadSplit(string directory, string split)
    {
        var images = ReadIdx(directory, $"{split}-images-idx3-ubyte");
        var labels = ReadIdx(directory, $"{split}-labels-idx1-ubyte");
        if (images.Dimensions.Count != 3 || labels.Dimensions.Count != 1 || images.Dimensions[0] != labels.Dimensions[0])
        {
            throw new InvalidDataException(
                $"{directory}: {split} images [{string.Join(", ", images.Dimensions)}] and labels [{string.Join(", ", labels.Dimensions)}] do not match (expected [n, rows, columns] and [n]).");
        }
        var (count, height, width) = (images.Dimensions[0], images.Dimensions[1], images.Dimensions[2]);
        var size = height * width;
        var result = new List<LabeledImage>(count);
        for (var i = 0; i < count; i++)
        {
            var label = labels.Values[i];
            if (label >= Labels.Count) throw new InvalidDataException($"{directory}: {split} label {i} is {label}; Fashion-MNIST has {Labels.Count} classes.");
            result.Add(new LabeledImage(images.Values.AsSpan(i * size, size).ToArray(), height, width, label));
        }
        return result;
    }

    /// <summary>The file <paramref name="name"/>, gzip'd (as Debian ships it) or not.</summary>
    private static IdxFile ReadIdx(string directory, string name)
    {
        foreach (var candidate in new[] { Path.Combine(directory, name + ".gz"), Path.Combine(directory, name) })
        {
            if (File.Exists(candidate)) return IdxFile.Read(candidate);
        }
        throw new FileNotFoundException(
            $"Fashion-MNIST's {name}(.gz) is not in {directory}: install Debian's '{DebianPackage}' package (apt-get install {DebianPackage}).",
            Path.Combine(directory, name + ".gz"));
    }
}
