using System.Globalization;
using Peft.Training;

namespace Peft.Cli.Reporting;

/// <summary>
/// save_total_limit as transformers' Trainer applies it: of the <c>checkpoint-epoch-N</c> folders,
/// keep the newest up to the limit, and always the last and the best (lowest test loss), so that
/// --resume and the best epoch stay on disk while full fine-tuning's optimizer state does not pile up.
/// </summary>
public static class CheckpointPruning
{
    private const string Prefix = "checkpoint-epoch-";

    /// <summary>Deletes the checkpoints past <paramref name="limit"/> (0: keeps all); returns the epochs kept.</summary>
    /// <param name="directory">The trainer's output directory.</param>
    /// <param name="evaluations">One per finished epoch, epoch 1 first.</param>
    /// <param name="limit">How many to keep at most, beyond the last and the best.</param>
    public static IReadOnlyList<int> Prune(string directory, IReadOnlyList<EvaluationResult> evaluations, int limit)
    {
        if (!Directory.Exists(directory)) return [];
        var epochs = Directory.GetDirectories(directory, Prefix + "*")
            .Select(d => int.TryParse(Path.GetFileName(d)[Prefix.Length..], NumberStyles.None, CultureInfo.InvariantCulture, out var e) ? e : -1)
            .Where(e => e > 0)
            .OrderDescending()
            .ToList();
        if (limit <= 0 || epochs.Count == 0) return epochs.Order().ToList();

        var keep = new HashSet<int> { epochs[0] };
        var best = Enumerable.Range(0, evaluations.Count)
            .Where(i => !double.IsNaN(evaluations[i].Loss) && epochs.Contains(i + 1))
            .OrderBy(i => evaluations[i].Loss)
            .Select(i => i + 1)
            .FirstOrDefault();
        if (best > 0) keep.Add(best);
        foreach (var epoch in epochs)
        {
            if (keep.Count >= limit) break;
            keep.Add(epoch);
        }
        foreach (var epoch in epochs.Where(e => !keep.Contains(e)))
        {
            Directory.Delete(Path.Combine(directory, Prefix + epoch.ToString(CultureInfo.InvariantCulture)), recursive: true);
        }
        return keep.Order().ToList();
    }
}
