using Peft.Pretrained;

namespace Peft.Cli.Data;

/// <summary>A labelled text dataset split into training and test examples.</summary>
/// <param name="Labels">Label names; an example's Label indexes this list.</param>
/// <param name="Train">Training examples.</param>
/// <param name="Test">Held-out examples (never used to choose hyper-parameters).</param>
/// <param name="Source">Where the data came from, for reports.</param>
public sealed record ClassificationData(IReadOnlyList<string> Labels, IReadOnlyList<LabeledText> Train, IReadOnlyList<LabeledText> Test, string Source)
{
    /// <summary>The fortunes corpus split as <see cref="FortunesDataset"/> splits it.</summary>
    public static ClassificationData FromFortunes(IReadOnlyList<string> categories, int seed, double testFraction, int maxPerCategory)
    {
        var fortunes = FortunesDataset.Load(categories, seed, testFraction, maxPerCategory);
        return new ClassificationData(fortunes.Categories, fortunes.Train, fortunes.Test, $"fortunes ({string.Join(", ", fortunes.Categories)})");
    }

    /// <summary>A --data file split per label with a seeded shuffle, so every label is in both parts.</summary>
    public static ClassificationData FromFile(string path, BadLinePolicy policy, Action<string> warn, int seed, double testFraction, int maxPerLabel)
    {
        var (labels, rows) = DataFileReader.ReadLabelled(path, policy, warn);
        var random = new Random(seed);
        var train = new List<LabeledText>();
        var test = new List<LabeledText>();
        for (int label = 0; label < labels.Count; label++)
        {
            var name = labels[label];
            var examples = rows.Where(r => r.Label == name).Select(r => new LabeledText(r.Text, label)).ToArray();
            random.Shuffle(examples);
            if (maxPerLabel > 0 && examples.Length > maxPerLabel) examples = examples[..maxPerLabel];
            var testCount = Math.Max(1, (int)Math.Round(examples.Length * testFraction));
            if (examples.Length - testCount < 1) throw new DataFileException($"{path}: label '{name}' has {examples.Length} example(s); each label needs at least 2 to split.");
            test.AddRange(examples[..testCount]);
            train.AddRange(examples[testCount..]);
        }
        return new ClassificationData(labels, train, test, path);
    }
}
