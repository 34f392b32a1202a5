using System.Globalization;
using System.Text.Json;
using Peft.Modeling;
using Peft.Tokenizers;
using TorchSharp;

namespace Peft.Serving;

/// <summary>
/// Sequence classification for SEQ_CLS adapters (<c>/v1/classify</c>): texts in, each text's label and the
/// probability of every label out. A call's texts run as one batch routed to its adapter; calls for different
/// adapters may run at the same time on one model (per-row routing touches no shared state).
/// </summary>
/// <param name="residency">The adapters.</param>
/// <param name="tokenizer">The model's tokenizer (WordPiece for BERT-like models).</param>
/// <param name="labels">Each adapter's label names, index order (from the config.json saved beside it).</param>
/// <param name="maxLength">Tokens per text at most (longer texts are truncated, as the training did).</param>
public sealed class SequenceClassifier(AdapterResidency residency, PretrainedTokenizer tokenizer, IReadOnlyDictionary<string, IReadOnlyList<string>> labels, int maxLength)
{
    /// <summary>The label names of <paramref name="adapter"/> (LABEL_i when none were saved).</summary>
    public IReadOnlyList<string> LabelsOf(string adapter) =>
        labels.TryGetValue(adapter, out var names) ? names
        : [.. Enumerable.Range(0, residency.Model.Model.Config.NumLabels).Select(i => $"LABEL_{i}")];

    /// <summary>Classifies <paramref name="texts"/> with <paramref name="adapter"/>.</summary>
    /// <exception cref="KeyNotFoundException">Unknown adapter.</exception>
    public async Task<IReadOnlyList<Classification>> ClassifyAsync(string adapter, IReadOnlyList<string> texts, CancellationToken cancellationToken = default)
    {
        if (texts.Count == 0) throw new InvalidRequestException("input is empty.", "input");
        using var lease = await residency.AcquireAsync([adapter], cancellationToken).ConfigureAwait(false);
        var names = LabelsOf(adapter);
        return await Task.Run(() =>
        {
            using var scope = torch.NewDisposeScope();
            using var noGrad = torch.no_grad();
            var batch = tokenizer.EncodeBatch(texts, maxLength);
            var logits = residency.Model.Forward(new ModelInputs { InputIds = batch.InputIds, AttentionMask = batch.AttentionMask }, [.. Enumerable.Repeat(adapter, texts.Count)]).Logits;
            var probabilities = torch.nn.functional.softmax(logits.to_type(torch.float32), dim: -1);
            var values = probabilities.data<float>().ToArray();
            var width = (int)probabilities.shape[1];
            return (IReadOnlyList<Classification>)[.. Enumerable.Range(0, texts.Count).Select(row =>
            {
                var scores = values[(row * width)..((row + 1) * width)];
                var best = Array.IndexOf(scores, scores.Max());
                return new Classification(best < names.Count ? names[best] : $"LABEL_{best}", scores[best],
                    scores.Select((p, i) => (Label: i < names.Count ? names[i] : $"LABEL_{i}", p)).ToDictionary(s => s.Label, s => (double)s.p));
            })];
        }, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>The <c>id2label</c> names of a config.json beside an adapter (index order), or null when there are none.</summary>
    public static IReadOnlyList<string>? ReadLabels(string adapterDirectory)
    {
        var path = Path.Combine(adapterDirectory, "config.json");
        if (!File.Exists(path)) return null;
        using var document = JsonDocument.Parse(File.ReadAllBytes(path));
        if (!document.RootElement.TryGetProperty("id2label", out var map) || map.ValueKind != JsonValueKind.Object) return null;
        var entries = map.EnumerateObject().Select(p => (Index: int.Parse(p.Name, CultureInfo.InvariantCulture), Name: p.Value.GetString() ?? p.Name)).OrderBy(e => e.Index).ToList();
        return entries.Select((e, i) => e.Index == i ? e.Name : throw new InvalidDataException($"{path}: id2label does not number the labels 0..{entries.Count - 1}.")).ToList();
    }
}

/// <summary>One text's class.</summary>
/// <param name="Label">The most probable label.</param>
/// <param name="Score">Its probability.</param>
/// <param name="Scores">Every label's probability.</param>
public sealed record Classification(string Label, double Score, IReadOnlyDictionary<string, double> Scores);
