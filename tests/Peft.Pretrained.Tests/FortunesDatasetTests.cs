using Xunit.Abstractions;

namespace Peft.Pretrained.Tests;

public sealed class FortunesDatasetTests : IDisposable
{
    private readonly ITestOutputHelper _output;
    private readonly string _directory = Path.Combine(Path.GetTempPath(), "peft-fortunes-" + Guid.NewGuid().ToString("N"));

    public FortunesDatasetTests(ITestOutputHelper output)
    {
        _output = output;
        Directory.CreateDirectory(Path.Combine(_directory, "off"));
        Write("cats", 40, i => $"cat fortune {i}\n\t\t-- someone");
        Write("dogs", 25, i => $"dog fortune {i}");
        Write("birds", 7, i => $"bird fortune {i}");
        File.WriteAllText(Path.Combine(_directory, "cats.dat"), "binary index");
        File.WriteAllText(Path.Combine(_directory, "cats.u8"), "link");
        File.WriteAllText(Path.Combine(_directory, "off", "rude"), "rude\n%\n");
    }

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    private void Write(string category, int count, Func<int, string> entry) =>
        File.WriteAllText(Path.Combine(_directory, category), string.Concat(Enumerable.Range(0, count).Select(i => entry(i) + "\n%\n")));

    [Fact]
    public void The_split_is_deterministic_for_a_seed_and_changes_with_it()
    {
        var first = FortunesDataset.Load(["cats", "dogs"], seed: 7, testFraction: 0.2, maxPerCategory: 100, _directory);
        var second = FortunesDataset.Load(["cats", "dogs"], seed: 7, testFraction: 0.2, maxPerCategory: 100, _directory);
        var other = FortunesDataset.Load(["cats", "dogs"], seed: 8, testFraction: 0.2, maxPerCategory: 100, _directory);

        Assert.Equal(first.Train, second.Train);
        Assert.Equal(first.Test, second.Test);
        Assert.NotEqual(first.Test.Select(e => e.Text).Order(), other.Test.Select(e => e.Text).Order());
    }

    [Fact]
    public void Train_and_test_are_disjoint_cover_every_entry_and_are_stratified()
    {
        var data = FortunesDataset.Load(["cats", "dogs", "birds"], seed: 1, testFraction: 0.2, maxPerCategory: 100, _directory);

        Assert.Equal(["cats", "dogs", "birds"], data.Categories);
        Assert.Empty(data.Train.Select(e => e.Text).Intersect(data.Test.Select(e => e.Text)));
        Assert.Equal(40 + 25 + 7, data.Train.Count + data.Test.Count);
        // round(n × 0.2) per category: 8 of 40, 5 of 25, 1 of 7.
        Assert.Equal([8, 5, 1], Enumerable.Range(0, 3).Select(l => data.Test.Count(e => e.Label == l)));
        Assert.All(data.Train.Concat(data.Test), e => Assert.StartsWith(data.Categories[e.Label].TrimEnd('s') + " fortune ", e.Text));
        Assert.Contains(data.Train.Concat(data.Test), e => e.Text == "cat fortune 3\n\t\t-- someone");
    }

    [Fact]
    public void Max_per_category_caps_each_category_before_the_split()
    {
        var data = FortunesDataset.Load(["cats", "dogs", "birds"], seed: 3, testFraction: 0.25, maxPerCategory: 20, _directory);

        Assert.Equal([20, 20, 7], Enumerable.Range(0, 3).Select(l => data.Train.Concat(data.Test).Count(e => e.Label == l)));
        Assert.Equal([5, 5, 2], Enumerable.Range(0, 3).Select(l => data.Test.Count(e => e.Label == l)));
        var all = FortunesDataset.Load(["cats", "dogs", "birds"], seed: 3, testFraction: 0.25, maxPerCategory: 0, _directory);
        Assert.Equal(40 + 25 + 7, all.Train.Count + all.Test.Count);
    }

    [Fact]
    public void A_missing_category_is_named_along_with_those_present()
    {
        var error = Assert.Throws<ArgumentException>(() => FortunesDataset.Load(["cats", "fish"], 1, 0.2, 100, _directory));

        Assert.Contains("'fish'", error.Message);
        Assert.Contains("Present: birds, cats, dogs.", error.Message);
        Assert.Equal(["birds", "cats", "dogs"], FortunesDataset.AvailableCategories(_directory));
    }

    [Fact]
    public void Overstrikes_are_resolved_and_cross_category_duplicates_dropped()
    {
        File.WriteAllText(Path.Combine(_directory, "cats"), "_\bb_\bo_\bl_\bd cat\n%\nshared\n%\ncat\n%\ncat\n%\n");
        File.WriteAllText(Path.Combine(_directory, "dogs"), "shared\n%\ndog\n");

        var data = FortunesDataset.Load(["cats", "dogs"], 1, 0.0, 100, _directory);

        Assert.Equal(["bold cat", "cat"], data.Train.Where(e => e.Label == 0).Select(e => e.Text).Order());
        Assert.Equal(["dog"], data.Train.Where(e => e.Label == 1).Select(e => e.Text));
        Assert.Empty(data.Test);
    }

    [SkippableFact]
    public void The_default_categories_are_installed_and_well_populated()
    {
        Skip.IfNot(Directory.Exists(FortunesDataset.DefaultDirectory), "Debian's fortunes package is not installed.");

        var data = FortunesDataset.Load(FortunesDataset.DefaultCategories, seed: 0, testFraction: 0.2, maxPerCategory: 0);

        for (var label = 0; label < data.Categories.Count; label++)
        {
            var train = data.Train.Count(e => e.Label == label);
            var test = data.Test.Count(e => e.Label == label);
            _output.WriteLine($"{data.Categories[label],-10} {train + test,5} entries ({train} train, {test} test)");
            Assert.True(train + test >= 140, $"{data.Categories[label]} has only {train + test} entries");
        }
    }
}
