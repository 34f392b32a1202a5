using System.Text;

namespace Peft.Pretrained;

/// <summary>One example: a text and the index of its category in <see cref="FortunesDataset.Categories"/>.</summary>
/// <param name="Text">The fortune, trimmed, with terminal overstrikes (<c>_\bX</c>) resolved.</param>
/// <param name="Label">The category index.</param>
public sealed record LabeledText(string Text, int Label);

/// <summary>
/// A text-classification corpus from Debian's <c>fortunes</c> package (<c>apt-get install fortunes</c>): each category
/// file under <see cref="DefaultDirectory"/> holds entries separated by lines reading <c>%</c>; the label is the file.
/// Offensive fortunes (the <c>off/</c> folder) and the index files (<c>.dat</c>, <c>.u8</c>) are never read.
/// </summary>
/// <remarks>
/// Entries are de-duplicated within a category, and a text found in more than one of the chosen categories is
/// dropped (its label would be ambiguous). The split is stratified: each category is shuffled with a generator
/// seeded from <c>seed</c> and the category's name, capped at <c>maxPerCategory</c> (0: no cap), and its first
/// round(n × testFraction) entries go to the test set. The same arguments and files always give the same split.
/// </remarks>
public sealed class FortunesDataset
{
    /// <summary>Where Debian installs the fortune files.</summary>
    public const string DefaultDirectory = "/usr/share/games/fortunes";

    /// <summary>
    /// Six topical, non-offensive categories with at least ~150 entries each that a reader tells apart easily
    /// (label order as listed).
    /// </summary>
    public static IReadOnlyList<string> DefaultCategories { get; } = ["computers", "food", "politics", "science", "sports", "startrek"];

    private FortunesDataset(IReadOnlyList<string> categories, IReadOnlyList<LabeledText> train, IReadOnlyList<LabeledText> test)
    {
        Categories = categories;
        Train = train;
        Test = test;
    }

    /// <summary>The category names; a label is an index into this list.</summary>
    public IReadOnlyList<string> Categories { get; }

    /// <summary>The training examples, shuffled (deterministically).</summary>
    public IReadOnlyList<LabeledText> Train { get; }

    /// <summary>The test examples, shuffled (deterministically); disjoint from <see cref="Train"/>.</summary>
    public IReadOnlyList<LabeledText> Test { get; }

    /// <summary>Loads <paramref name="categories"/> and splits each into train and test.</summary>
    /// <param name="categories">Category file names, e.g. <see cref="DefaultCategories"/>; label i is categories[i].</param>
    /// <param name="seed">Seeds the shuffles; the same seed gives the same split.</param>
    /// <param name="testFraction">The share of each category held out for testing, in [0, 1).</param>
    /// <param name="maxPerCategory">At most this many entries are kept per category (a seeded sample); 0 keeps all.</param>
    /// <param name="directory">The fortunes directory; <see cref="DefaultDirectory"/> when null.</param>
    /// <exception cref="DirectoryNotFoundException">The directory does not exist (the package is not installed).</exception>
    /// <exception cref="ArgumentException">A category is missing (the message lists those present), repeated, or empty.</exception>
    public static FortunesDataset Load(IReadOnlyList<string> categories, int seed, double testFraction, int maxPerCategory, string? directory = null)
    {
        ArgumentNullException.ThrowIfNull(categories);
        if (categories.Count < 2) throw new ArgumentException("A classification dataset needs at least two categories.", nameof(categories));
        if (!(testFraction >= 0 && testFraction < 1)) throw new ArgumentOutOfRangeException(nameof(testFraction), testFraction, "Must be in [0, 1).");
        ArgumentOutOfRangeException.ThrowIfNegative(maxPerCategory);
        directory ??= DefaultDirectory;
        var duplicate = categories.GroupBy(c => c, StringComparer.Ordinal).FirstOrDefault(g => g.Count() > 1);
        if (duplicate is not null) throw new ArgumentException($"Fortune category '{duplicate.Key}' is listed twice.", nameof(categories));

        var present = AvailableCategories(directory);
        var entries = new List<List<string>>();
        foreach (var category in categories)
        {
            if (!present.Contains(category, StringComparer.Ordinal))
            {
                throw new ArgumentException(
                    $"Fortune category '{category}' not found in {directory}. Present: {string.Join(", ", present)}.", nameof(categories));
            }
            entries.Add(ReadEntries(Path.Combine(directory, category)).Distinct(StringComparer.Ordinal).ToList());
        }

        var seenIn = entries.SelectMany(e => e).GroupBy(t => t, StringComparer.Ordinal).Where(g => g.Count() > 1)
            .Select(g => g.Key).ToHashSet(StringComparer.Ordinal);
        var train = new List<LabeledText>();
        var test = new List<LabeledText>();
        for (var label = 0; label < categories.Count; label++)
        {
            var texts = entries[label].Where(t => !seenIn.Contains(t)).ToList();
            if (texts.Count == 0) throw new ArgumentException($"Fortune category '{categories[label]}' has no entries of its own.", nameof(categories));
            Shuffle(texts, new Random(seed ^ StableHash(categories[label])));
            if (maxPerCategory > 0 && texts.Count > maxPerCategory) texts.RemoveRange(maxPerCategory, texts.Count - maxPerCategory);
            var testCount = (int)Math.Round(texts.Count * testFraction, MidpointRounding.AwayFromZero);
            if (testFraction > 0 && texts.Count >= 2) testCount = Math.Clamp(testCount, 1, texts.Count - 1);
            test.AddRange(texts.Take(testCount).Select(t => new LabeledText(t, label)));
            train.AddRange(texts.Skip(testCount).Select(t => new LabeledText(t, label)));
        }
        Shuffle(train, new Random(seed));
        Shuffle(test, new Random(seed + 1));
        return new FortunesDataset([.. categories], train, test);
    }

    /// <summary>The category files in <paramref name="directory"/> (sorted), without index files or sub-folders.</summary>
    /// <exception cref="DirectoryNotFoundException">The directory does not exist.</exception>
    public static IReadOnlyList<string> AvailableCategories(string? directory = null)
    {
        directory ??= DefaultDirectory;
        if (!Directory.Exists(directory))
        {
            throw new DirectoryNotFoundException($"Fortunes directory '{directory}' not found; install Debian's 'fortunes' package (apt-get install -y fortunes).");
        }
        return [.. Directory.EnumerateFiles(directory)
            .Select(Path.GetFileName)
            .OfType<string>()
            .Where(n => !n.StartsWith('.') && !n.EndsWith(".dat", StringComparison.Ordinal) && !n.EndsWith(".u8", StringComparison.Ordinal))
            .Order(StringComparer.Ordinal)];
    }

    /// <summary>The non-empty entries of one fortune file, trimmed, overstrikes resolved.</summary>
    internal static IEnumerable<string> ReadEntries(string path)
    {
        var entry = new StringBuilder();
        foreach (var line in File.ReadLines(path, Encoding.UTF8))
        {
            if (line.TrimEnd('\r') == "%")
            {
                if (Clean(entry) is { Length: > 0 } text) yield return text;
                entry.Clear();
            }
            else
            {
                entry.Append(line).Append('\n');
            }
        }
        if (Clean(entry) is { Length: > 0 } last) yield return last;
    }

    // Terminal overstriking ("_\bA" underlines A, "A\bA" bolds it) keeps the last character of each pair.
    private static string Clean(StringBuilder entry)
    {
        var text = new StringBuilder(entry.Length);
        for (var i = 0; i < entry.Length; i++)
        {
            if (entry[i] == '\b')
            {
                if (text.Length > 0) text.Length--;
            }
            else if (entry[i] != '\r')
            {
                text.Append(entry[i]);
            }
        }
        return text.ToString().Trim();
    }

    private static void Shuffle<T>(List<T> items, Random random)
    {
        for (var i = items.Count - 1; i > 0; i--)
        {
            var j = random.Next(i + 1);
            (items[i], items[j]) = (items[j], items[i]);
        }
    }

    // FNV-1a: string.GetHashCode is randomised per process, and the split must not be.
    private static int StableHash(string text)
    {
        var hash = 2166136261u;
        foreach (var c in text)
        {
            hash = (hash ^ c) * 16777619u;
        }
        return unchecked((int)hash);
    }
}
