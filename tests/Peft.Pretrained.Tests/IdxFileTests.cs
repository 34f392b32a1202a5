using System.IO.Compression;

namespace Peft.Pretrained.Tests;

public sealed class IdxFileTests
{
    // Two 2×3 images: header 00 00 08 03, dims 2, 2, 3 (big-endian), then 12 bytes.
    private static readonly byte[] TwoImages =
    [
        0, 0, 0x08, 3, 0, 0, 0, 2, 0, 0, 0, 2, 0, 0, 0, 3,
        1, 2, 3, 4, 5, 6, 250, 251, 252, 253, 254, 255,
    ];

    [Fact]
    public void A_plain_idx_file_gives_its_dimensions_and_values()
    {
        var path = Path.GetTempFileName();
        try
        {
            File.WriteAllBytes(path, TwoImages);
            var idx = IdxFile.Read(path);

            Assert.Equal([2, 2, 3], idx.Dimensions);
            Assert.Equal(TwoImages[16..], idx.Values);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void A_gzipped_idx_file_reads_the_same()
    {
        var path = Path.GetTempFileName();
        try
        {
            using (var file = File.Create(path))
            using (var gzip = new GZipStream(file, CompressionLevel.Optimal))
            {
                gzip.Write(TwoImages);
            }
            var idx = IdxFile.Read(path);

            Assert.Equal([2, 2, 3], idx.Dimensions);
            Assert.Equal(255, idx.Values[^1]);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void Short_data_and_other_value_types_are_refused_with_the_reason()
    {
        var shortData = Assert.Throws<InvalidDataException>(() => IdxFile.Parse(TwoImages.AsSpan(0, 20), "short.idx"));
        Assert.Contains("need 12 bytes", shortData.Message);

        var floats = (byte[])TwoImages.Clone();
        floats[2] = 0x0D;
        Assert.Contains("0x0d is not supported", Assert.Throws<InvalidDataException>(() => IdxFile.Parse(floats, "f.idx")).Message);
        Assert.Contains("two zero bytes", Assert.Throws<InvalidDataException>(() => IdxFile.Parse([1, 0, 8, 1], "x.idx")).Message);
    }

    [Fact]
    public void Fashion_mnist_files_missing_name_the_debian_package()
    {
        var empty = Directory.CreateTempSubdirectory("peft-no-fashion-mnist-");
        try
        {
            var error = Assert.Throws<FileNotFoundException>(() => FashionMnistDataset.Load(1, 1, 0, empty.FullName));
            Assert.Contains("dataset-fashion-mnist", error.Message);
            Assert.Contains("train-images-idx3-ubyte", error.Message);
        }
        finally
        {
            empty.Delete(recursive: true);
        }
    }

    [Fact]
    public void A_hand_made_fashion_mnist_directory_loads_a_seeded_subset_per_class()
    {
        var directory = Directory.CreateTempSubdirectory("peft-fashion-mnist-");
        try
        {
            // 20 images of 2×2, labels 0..9 twice; pixel value = image index.
            foreach (var split in new[] { "train", "t10k" })
            {
                byte[] images = [0, 0, 8, 3, 0, 0, 0, 20, 0, 0, 0, 2, 0, 0, 0, 2, .. Enumerable.Range(0, 20).SelectMany(i => Enumerable.Repeat((byte)i, 4))];
                byte[] labels = [0, 0, 8, 1, 0, 0, 0, 20, .. Enumerable.Range(0, 20).Select(i => (byte)(i % 10))];
                File.WriteAllBytes(Path.Combine(directory.FullName, $"{split}-images-idx3-ubyte"), images);
                File.WriteAllBytes(Path.Combine(directory.FullName, $"{split}-labels-idx1-ubyte"), labels);
            }
            var data = FashionMnistDataset.Load(trainPerClass: 1, testPerClass: 2, seed: 5, directory.FullName);

            Assert.Equal(10, data.Train.Count);
            Assert.Equal(Enumerable.Range(0, 10), data.Train.Select(i => i.Label).Order());
            Assert.All(data.Train, i => Assert.Equal(i.Label, i.Pixels[0] % 10)); // images keep their own labels
            Assert.Equal(20, data.Test.Count);
            Assert.Equal(data.Train.Select(i => i.Pixels[0]), FashionMnistDataset.Load(1, 2, 5, directory.FullName).Train.Select(i => i.Pixels[0]));
        }
        finally
        {
            directory.Delete(recursive: true);
        }
    }
}
