using System.Text;
using System.Text.Json;

namespace Peft.Cli.Data;

/// <summary>What to do with a line that cannot be read.</summary>
public enum BadLinePolicy
{
    /// <summary>Stop with an error naming the line.</summary>
    Fail,
    /// <summary>Report the line as a warning and go on.</summary>
    Skip,
}

/// <summary>A data file that cannot be used; the message names the file and, where it applies, the line.</summary>
public sealed class DataFileException(string message) : Exception(message);

/// <summary>
/// Reads <c>--data</c> files: JSONL (one object per line with <c>text</c> and <c>label</c>, or
/// <c>prompt</c> and <c>completion</c>) or CSV (a header naming those columns, RFC 4180 quoting).
/// </summary>
public static class DataFileReader
{
    /// <summary>Reads labelled texts; unreadable lines follow <paramref name="policy"/> and are reported to <paramref name="warn"/>.</summary>
    /// <exception cref="DataFileException">The file is missing or empty, a line is bad under <see cref="BadLinePolicy.Fail"/>, or a label is not among <paramref name="knownLabels"/>.</exception>
    public static (IReadOnlyList<string> Labels, IReadOnlyList<(string Text, string Label)> Rows) ReadLabelled(
        string path, BadLinePolicy policy, Action<string> warn, IReadOnlyList<string>? knownLabels = null)
    {
        var rows = new List<(string, string)>();
        foreach (var (line, text, label, problem) in ReadPairs(path, "text", "label"))
        {
            var error = problem
                ?? (string.IsNullOrWhiteSpace(text) ? "empty 'text'" : null)
                ?? (string.IsNullOrWhiteSpace(label) ? "missing 'label'" : null)
                ?? (knownLabels is not null && !knownLabels.Contains(label!) ? $"unknown label '{label}' (known: {string.Join(", ", knownLabels)})" : null);
            if (error is not null)
            {
                var message = $"{path}:{line}: {error}";
                if (policy == BadLinePolicy.Fail) throw new DataFileException(message);
                warn(message + " (skipped)");
                continue;
            }
            rows.Add((text!, label!));
        }
        if (rows.Count == 0) throw new DataFileException($"{path}: no usable examples.");
        var distinct = rows.Select(r => r.Item2).Distinct().ToList();
        // Numeric labels keep their numeric order (2 before 10), so label "3" is class 3 when they are 0..n-1.
        var labels = knownLabels ?? (distinct.All(l => long.TryParse(l, System.Globalization.NumberStyles.AllowLeadingSign, System.Globalization.CultureInfo.InvariantCulture, out _))
            ? distinct.OrderBy(l => long.Parse(l, System.Globalization.CultureInfo.InvariantCulture)).ToList()
            : distinct.Order(StringComparer.Ordinal).ToList());
        if (labels.Count < 2) throw new DataFileException($"{path}: classification needs at least two labels, found {labels.Count}.");
        return (labels, rows);
    }

    /// <summary>Reads prompt + completion pairs (for causal-LM fine-tuning); unreadable lines follow <paramref name="policy"/>.</summary>
    /// <exception cref="DataFileException">The file is missing or has no usable pair, or a line is bad under <see cref="BadLinePolicy.Fail"/>.</exception>
    public static IReadOnlyList<(string Prompt, string Completion)> ReadPromptCompletion(string path, BadLinePolicy policy, Action<string> warn)
    {
        var pairs = new List<(string, string)>();
        foreach (var (line, prompt, completion, problem) in ReadPairs(path, "prompt", "completion"))
        {
            var error = problem
                ?? (prompt is null ? "missing 'prompt'" : null)
                ?? (string.IsNullOrEmpty(completion) ? "empty 'completion'" : null);
            if (error is not null)
            {
                var message = $"{path}:{line}: {error}";
                if (policy == BadLinePolicy.Fail) throw new DataFileException(message);
                warn(message + " (skipped)");
                continue;
            }
            pairs.Add((prompt!, completion!));
        }
        if (pairs.Count == 0) throw new DataFileException($"{path}: no usable examples.");
        return pairs;
    }

    /// <summary>The <c>text</c> field of every record (a label, if any, is ignored); a bad record is an error naming its line.</summary>
    /// <exception cref="DataFileException">The file is missing, a record cannot be read, or it has no text.</exception>
    public static IReadOnlyList<string> ReadTexts(string path)
    {
        var texts = new List<string>();
        foreach (var (line, text, _, problem) in ReadPairs(path, "text", "label", requireSecond: false))
        {
            if (problem is not null || string.IsNullOrWhiteSpace(text)) throw new DataFileException($"{path}:{line}: {problem ?? "empty or missing 'text'"}");
            texts.Add(text);
        }
        if (texts.Count == 0) throw new DataFileException($"{path}: no texts.");
        return texts;
    }

    /// <summary>The two named fields of every record, with its line number and what is wrong with it, if anything.</summary>
    private static IEnumerable<(int Line, string? First, string? Second, string? Problem)> ReadPairs(string path, string first, string second, bool requireSecond = true)
    {
        if (!File.Exists(path)) throw new DataFileException($"{path}: not found.");
        return Path.GetExtension(path).ToLowerInvariant() switch
        {
            ".jsonl" or ".json" => ReadJsonLines(path, first, second),
            ".csv" => ReadCsv(path, first, second, requireSecond),
            var extension => throw new DataFileException($"{path}: unknown format '{extension}'; use .jsonl or .csv."),
        };
    }

    private static IEnumerable<(int, string?, string?, string?)> ReadJsonLines(string path, string first, string second)
    {
        int number = 0;
        foreach (var line in File.ReadLines(path))
        {
            number++;
            if (string.IsNullOrWhiteSpace(line)) continue;
            string? text = null, label = null, problem = null;
            try
            {
                using var document = JsonDocument.Parse(line);
                var root = document.RootElement;
                if (root.ValueKind != JsonValueKind.Object) problem = "not a JSON object";
                else
                {
                    text = root.TryGetProperty(first, out var t) && t.ValueKind == JsonValueKind.String ? t.GetString() : null;
                    // A numeric label (0, 1, ...) is as good as a name: it is kept as written.
                    label = !root.TryGetProperty(second, out var l) ? null : l.ValueKind switch
                    {
                        JsonValueKind.String => l.GetString(),
                        JsonValueKind.Number => l.GetRawText(),
                        JsonValueKind.True or JsonValueKind.False => l.GetRawText(),
                        JsonValueKind.Null => null,
                        _ => null,
                    };
                    if (l.ValueKind is JsonValueKind.Object or JsonValueKind.Array) problem = $"'{second}' must be a string or a number";
                }
            }
            catch (JsonException e)
            {
                problem = $"not valid JSON ({e.Message.Split('.')[0]})";
            }
            yield return (number, text, label, problem);
        }
    }

    private static IEnumerable<(int, string?, string?, string?)> ReadCsv(string path, string first, string second, bool requireSecond)
    {
        using var reader = new StreamReader(path, Encoding.UTF8);
        int number = 0;
        var header = ReadRecord(reader, ref number);
        if (header is null) throw new DataFileException($"{path}: empty file.");
        var textColumn = header.FindIndex(h => h.Trim().Equals(first, StringComparison.OrdinalIgnoreCase));
        var labelColumn = header.FindIndex(h => h.Trim().Equals(second, StringComparison.OrdinalIgnoreCase));
        if (textColumn < 0 || (labelColumn < 0 && requireSecond)) throw new DataFileException($"{path}:1: the header must name '{first}' and '{second}' columns.");
        while (true)
        {
            var start = number + 1;
            List<string>? record;
            string? problem = null;
            try
            {
                record = ReadRecord(reader, ref number);
            }
            catch (FormatException e)
            {
                // A quote that never closes took every following line into one field: no row after it
                // can be trusted, so this is an error even when bad lines are skipped.
                throw new DataFileException($"{path}:{start}: {e.Message}; every line after it was read into that field.");
            }
            if (record is null) yield break;
            if (problem is null && record.Count == 1 && record[0].Length == 0) continue;
            if (problem is null && record.Count != header.Count) problem = $"{record.Count} fields, the header has {header.Count}";
            yield return problem is null ? (start, record[textColumn], labelColumn >= 0 ? record[labelColumn] : null, null) : (start, null, null, problem);
        }
    }

    /// <summary>One CSV record (quoted fields may span lines), or null at the end.</summary>
    private static List<string>? ReadRecord(StreamReader reader, ref int lineNumber)
    {
        var line = reader.ReadLine();
        if (line is null) return null;
        lineNumber++;
        var fields = new List<string>();
        var field = new StringBuilder();
        bool quoted = false;
        for (int i = 0; ; i++)
        {
            if (i == line.Length)
            {
                if (!quoted) break;
                var next = reader.ReadLine() ?? throw new FormatException("a quoted field starts here and is never closed");
                lineNumber++;
                field.Append('\n');
                line = next;
                i = -1;
                continue;
            }
            var c = line[i];
            if (quoted)
            {
                if (c == '"' && i + 1 < line.Length && line[i + 1] == '"') { field.Append('"'); i++; }
                else if (c == '"') quoted = false;
                else field.Append(c);
            }
            else if (c == '"' && field.Length == 0) quoted = true;
            else if (c == ',') { fields.Add(field.ToString()); field.Clear(); }
            else field.Append(c);
        }
        fields.Add(field.ToString());
        return fields;
    }
}
