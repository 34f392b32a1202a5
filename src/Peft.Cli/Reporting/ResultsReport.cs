using System.Globalization;
using System.Text;
using Spectre.Console;

namespace Peft.Cli.Reporting;

/// <summary>The comparison table, on the console and as Markdown.</summary>
public static class ResultsReport
{
    private static readonly CultureInfo Invariant = CultureInfo.InvariantCulture;

    /// <summary>A console table of the results.</summary>
    public static Table ToTable(IReadOnlyList<MethodResult> results)
    {
        var table = new Table().Border(TableBorder.Rounded)
            .AddColumns("method", "test accuracy", "trainable params", "% of all", "checkpoint", "train time", "reloaded accuracy");
        foreach (var row in results)
        {
            var cells = Cells(row);
            table.AddRow(cells.Select(Markup.Escape).ToArray());
        }
        return table;
    }

    /// <summary>The same table in Markdown, for README.md and the output folder.</summary>
    public static string ToMarkdown(IReadOnlyList<MethodResult> results, string heading)
    {
        var text = new StringBuilder();
        text.AppendLine(heading).AppendLine();
        text.AppendLine("| method | test accuracy | trainable params | % of all | checkpoint | train time | reloaded accuracy |");
        text.AppendLine("| --- | --- | --- | --- | --- | --- | --- |");
        foreach (var row in results) text.AppendLine("| " + string.Join(" | ", Cells(row)) + " |");
        return text.ToString();
    }

    private static string[] Cells(MethodResult row) =>
    [
        row.Method switch { "lora" => "LoRA", "probe" => "linear probe", "full" => "full fine-tuning", var m => m },
        row.Accuracy.ToString("P1", Invariant),
        row.TrainableParameters.ToString("N0", Invariant),
        (100.0 * row.TrainableParameters / row.AllParameters).ToString("F2", Invariant) + "%",
        Bytes(row.CheckpointBytes),
        $"{row.Elapsed.TotalSeconds.ToString("F0", Invariant)} s",
        row.ReloadedAccuracy is { } reloaded ? reloaded.ToString("P1", Invariant) : "",
    ];

    private static string Bytes(long bytes) => bytes switch
    {
        >= 1 << 20 => (bytes / (double)(1 << 20)).ToString("F1", Invariant) + " MiB",
        >= 1 << 10 => (bytes / (double)(1 << 10)).ToString("F1", Invariant) + " KiB",
        _ => bytes.ToString(Invariant) + " B",
    };
}
