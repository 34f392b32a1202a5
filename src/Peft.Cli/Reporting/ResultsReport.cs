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
        // Two-line headers, unwrapped cells and one space of padding: the seven columns fit 80 columns
        // (79 for the widest rows) without breaking a word or number.
        var table = new Table().Border(TableBorder.Rounded);
        foreach (var header in new[] { "method", "test\naccuracy", "trainable\nparams", "% of\nall", "checkpoint", "train\ntime", "reloaded\naccuracy" })
        {
            table.AddColumn(new TableColumn(new Text(header)).NoWrap().PadLeft(1).PadRight(0));
        }
        foreach (var row in results)
        {
            table.AddRow(Cells(row).Select(c => (Spectre.Console.Rendering.IRenderable)new Text(c)).ToArray());
        }
        return table;
    }

    /// <summary>The same table in Markdown, for README.md and the output folder.</summary>
    public static string ToMarkdown(IReadOnlyList<MethodResult> results, string heading)
    {
        var text = new StringBuilder();
        text.AppendLine(heading).AppendLine();
        if (results.FirstOrDefault(r => r.Training.Cancelled) is { } cancelled)
        {
            text.AppendLine($"**Cancelled** (Ctrl+C) during {Name(cancelled.Method)} after {cancelled.Training.Evaluations.Count} finished epoch(s): " +
                "its row is the model as it stood then, not a finished run, and the methods after it did not run.").AppendLine();
        }
        text.AppendLine("| method | test accuracy | trainable params | % of all | checkpoint | train time | reloaded accuracy |");
        text.AppendLine("| --- | --- | --- | --- | --- | --- | --- |");
        foreach (var row in results) text.AppendLine("| " + string.Join(" | ", Cells(row)) + " |");
        return text.ToString();
    }

    private static string[] Cells(MethodResult row) =>
    [
        Name(row.Method) + (row.Training.Cancelled ? $" (cancelled, {row.Training.Evaluations.Count} epochs)" : ""),
        row.Accuracy.ToString("P1", Invariant),
        row.TrainableParameters.ToString("N0", Invariant),
        (100.0 * row.TrainableParameters / row.AllParameters).ToString("F2", Invariant) + "%",
        Bytes(row.CheckpointBytes),
        $"{row.Elapsed.TotalSeconds.ToString("F0", Invariant)} s",
        row.ReloadedAccuracy is { } reloaded ? reloaded.ToString("P1", Invariant) : "",
    ];

    private static string Name(string method) => method switch { "lora" => "LoRA", "probe" => "linear probe", "full" => "full fine-tuning", var m => m };

    private static string Bytes(long bytes) => bytes switch
    {
        >= 1 << 20 => (bytes / (double)(1 << 20)).ToString("F1", Invariant) + " MiB",
        >= 1 << 10 => (bytes / (double)(1 << 10)).ToString("F1", Invariant) + " KiB",
        _ => bytes.ToString(Invariant) + " B",
    };
}
