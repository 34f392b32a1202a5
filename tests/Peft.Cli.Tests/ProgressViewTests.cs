using System.Text;
using System.Text.RegularExpressions;
using Microsoft.Extensions.Logging;
using Peft.Cli.Hosting;
using Peft.Cli.Reporting;
using Peft.Training;
using Spectre.Console.Testing;

namespace Peft.Cli.Tests;

/// <summary>The live progress bar of a terminal and the log lines written while it runs.</summary>
public class ProgressViewTests
{
    [Fact]
    public void ALogLineDuringTheLiveBarStaysOnScreenAboveIt()
    {
        var console = new TestConsole().Interactive().EmitAnsiSequences();
        console.Profile.Width = 80;
        using var provider = new ConsoleLoggerProvider(console);
        var logger = provider.CreateLogger("Peft");
        const string message = "a warning written while the bar is live";

        TrainingProgressView.Run(console, "lora", 1, progress =>
        {
            progress.Report(new TrainingProgress(1, 1, 4, 0.5, 1e-3, 100));
            Thread.Sleep(400);   // the bar is drawn (Spectre.Console refreshes every 100 ms) before the line comes
            logger.LogWarning(message);
            Thread.Sleep(400);   // and redrawn after it
            progress.Report(new TrainingProgress(1, 4, 4, 0.25, 1e-3, 100));
            return new TrainingResult([0.5, 0.25], [], Cancelled: false, TimeSpan.Zero);
        });

        // What a terminal shows at the end: the log line whole on a row of its own, the finished bar below it.
        var screen = Screen(console.Output);
        var logRow = screen.FindIndex(row => Regex.IsMatch(row, $@"^\d\d:\d\d:\d\d warn {message}\s*$"));
        Assert.True(logRow >= 0, string.Join("\n", screen));
        Assert.Contains(screen.Skip(logRow + 1), row => row.Contains("100%", StringComparison.Ordinal));
    }

    /// <summary>The rows a terminal ends with after <paramref name="output"/>: text overwrites, \r, \n and cursor-up (ESC[nA) move; other escapes draw nothing.</summary>
    private static List<string> Screen(string output)
    {
        var rows = new List<StringBuilder> { new() };
        int row = 0, column = 0;
        for (var i = 0; i < output.Length; i++)
        {
            var c = output[i];
            if (c == '\x1b' && Regex.Match(output[i..], @"^\x1b\[([0-9;?]*)([A-Za-z])") is { Success: true } escape)
            {
                if (escape.Groups[2].Value == "A") row = Math.Max(0, row - int.Parse(escape.Groups[1].Value is { Length: > 0 } n ? n : "1"));
                i += escape.Length - 1;
                continue;
            }
            if (c == '\r') { column = 0; continue; }
            if (c == '\n') { row++; column = 0; }
            while (rows.Count <= row) rows.Add(new StringBuilder());
            if (c == '\n') continue;
            var line = rows[row];
            if (line.Length <= column) line.Append(' ', column - line.Length + 1);
            line[column++] = c;
        }
        return rows.Select(r => r.ToString()).ToList();
    }
}
