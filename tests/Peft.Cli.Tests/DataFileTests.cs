using Peft.Cli.Data;

namespace Peft.Cli.Tests;

public sealed class DataFileTests : IDisposable
{
    private readonly string _directory = Path.Combine(Path.GetTempPath(), "peft-cli-" + Guid.NewGuid().ToString("N"));

    public DataFileTests() => Directory.CreateDirectory(_directory);

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    private string Write(string name, string content)
    {
        var path = Path.Combine(_directory, name);
        File.WriteAllText(path, content);
        return path;
    }

    [Fact]
    public void JsonLinesAreRead()
    {
        var path = Write("a.jsonl", "{\"text\": \"hello\", \"label\": \"greeting\"}\n\n{\"text\": \"bye\", \"label\": \"farewell\"}\n");
        var (labels, rows) = DataFileReader.ReadLabelled(path, BadLinePolicy.Fail, _ => { });
        Assert.Equal(["farewell", "greeting"], labels);
        Assert.Equal(2, rows.Count);
    }

    [Fact]
    public void CsvWithQuotesCommasAndNewlinesIsRead()
    {
        var path = Write("a.csv", "label,text\nx,\"a, b\"\ny,\"line one\nline \"\"two\"\"\"\n");
        var (_, rows) = DataFileReader.ReadLabelled(path, BadLinePolicy.Fail, _ => { });
        Assert.Equal("a, b", rows[0].Text);
        Assert.Equal("line one\nline \"two\"", rows[1].Text);
    }

    [Fact]
    public void BadJsonLineIsReportedWithItsNumber()
    {
        var path = Write("bad.jsonl", "{\"text\": \"a\", \"label\": \"x\"}\n{not json}\n{\"text\": \"b\", \"label\": \"y\"}\n");
        var error = Assert.Throws<DataFileException>(() => DataFileReader.ReadLabelled(path, BadLinePolicy.Fail, _ => { }));
        Assert.Contains("bad.jsonl:2", error.Message);
    }

    [Fact]
    public void BadLinesCanBeSkippedWithAWarning()
    {
        var path = Write("bad.jsonl", "{\"text\": \"a\", \"label\": \"x\"}\n{\"label\": \"x\"}\n{\"text\": \"b\", \"label\": \"y\"}\n");
        var warnings = new List<string>();
        var (_, rows) = DataFileReader.ReadLabelled(path, BadLinePolicy.Skip, warnings.Add);
        Assert.Equal(2, rows.Count);
        Assert.Single(warnings);
        Assert.Contains(":2:", warnings[0]);
    }

    [Fact]
    public void CsvRowWithWrongFieldCountNamesTheLine()
    {
        var path = Write("bad.csv", "text,label\na,x\nb,y,z\n");
        var error = Assert.Throws<DataFileException>(() => DataFileReader.ReadLabelled(path, BadLinePolicy.Fail, _ => { }));
        Assert.Contains("bad.csv:3", error.Message);
    }

    [Fact]
    public void UnknownLabelIsNamed()
    {
        var path = Write("a.jsonl", "{\"text\": \"a\", \"label\": \"x\"}\n{\"text\": \"b\", \"label\": \"q\"}\n");
        var error = Assert.Throws<DataFileException>(() => DataFileReader.ReadLabelled(path, BadLinePolicy.Fail, _ => { }, ["x", "y"]));
        Assert.Contains("unknown label 'q'", error.Message);
    }

    [Fact]
    public void EmptyFileIsAnError()
    {
        var path = Write("empty.jsonl", "");
        var error = Assert.Throws<DataFileException>(() => DataFileReader.ReadLabelled(path, BadLinePolicy.Fail, _ => { }));
        Assert.Contains("no usable examples", error.Message);
    }

    [Fact]
    public void CsvWithoutTextColumnIsAnError()
    {
        var path = Write("a.csv", "sentence,label\na,x\n");
        var error = Assert.Throws<DataFileException>(() => DataFileReader.ReadLabelled(path, BadLinePolicy.Fail, _ => { }));
        Assert.Contains("'text'", error.Message);
    }

    [Fact]
    public void MissingFileIsNamed()
    {
        var error = Assert.Throws<DataFileException>(() => DataFileReader.ReadLabelled(Path.Combine(_directory, "none.csv"), BadLinePolicy.Fail, _ => { }));
        Assert.Contains("none.csv", error.Message);
    }

    [Fact]
    public void SplitKeepsEveryLabelOnBothSidesAndIsDeterministic()
    {
        var lines = Enumerable.Range(0, 40).Select(i => $"{{\"text\": \"t{i}\", \"label\": \"{(i % 2 == 0 ? "a" : "b")}\"}}");
        var path = Write("split.jsonl", string.Join('\n', lines));
        var first = ClassificationData.FromFile(path, BadLinePolicy.Fail, _ => { }, seed: 7, testFraction: 0.25, maxPerLabel: 0);
        var second = ClassificationData.FromFile(path, BadLinePolicy.Fail, _ => { }, seed: 7, testFraction: 0.25, maxPerLabel: 0);
        Assert.Equal(first.Test.Select(t => t.Text), second.Test.Select(t => t.Text));
        Assert.Empty(first.Train.Select(t => t.Text).Intersect(first.Test.Select(t => t.Text)));
        Assert.Equal(2, first.Test.Select(t => t.Label).Distinct().Count());
        Assert.Equal(10, first.Test.Count);
    }

    [Fact]
    public void NumericJsonLabelsAreAcceptedInNumericOrder()
    {
        var path = Write("n.jsonl", string.Join('\n', new[] { 10, 2, 0, 2, 10, 0 }.Select(l => $"{{\"text\": \"t{l}\", \"label\": {l}}}")));
        var (labels, rows) = DataFileReader.ReadLabelled(path, BadLinePolicy.Fail, _ => { });
        Assert.Equal(["0", "2", "10"], labels);
        Assert.Equal(6, rows.Count);
    }

    [Fact]
    public void UnterminatedCsvQuoteIsAnErrorNamingItsLineEvenWhenSkipping()
    {
        var path = Write("q.csv", "text,label\nok,x\n\"never closed,y\nfine,x\nalso fine,y\n");
        var error = Assert.Throws<DataFileException>(() => DataFileReader.ReadLabelled(path, BadLinePolicy.Skip, _ => { }));
        Assert.Contains("q.csv:3", error.Message);
        Assert.Contains("never closed", error.Message);
    }
}
