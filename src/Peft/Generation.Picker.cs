using System.Text.Json;
using Peft.Modeling;
using TorchSharp;
using static TorchSharp.torch;

namespace Peft;

public static partial class Generation
{
    /// <summary>
    /// The choice per step: argmax (greedy) or a sample after temperature, top-k and top-p (transformers' warpers,
    /// in that order); forced end-of-sequence at the last step; padding for finished rows; a row finishes on an
    /// end-of-sequence or stop id, when its new tokens contain a stop string, or at its own token limit.
    /// </summary>
    /// <remarks>
    /// One options object for the whole batch (the <see cref="Generate"/> path) picks for all rows at once, as it
    /// always did; options per row pick row by row, each seeded row from its own generator, so that a row in a
    /// batch decodes exactly as it does alone.
    /// </remarks>
    internal sealed class TokenPicker : IDisposable
    {
        private readonly GenerationOptions[] _rows;
        private readonly bool _shared;
        private readonly long[][] _eos;
        private readonly long[] _pad;
        private readonly long? _forcedEos;
        private readonly Generator?[] _generators;
        private readonly IGenerationObserver? _observer;
        private readonly bool[] _done;
        private readonly int[] _newTokens;
        private readonly FinishReason?[] _reasons;
        private Tensor _finished;

        public TokenPicker(ModelConfig config, long batch, Device device, IReadOnlyList<GenerationOptions> options, IGenerationObserver? observer = null)
        {
            _shared = options.Count == 1;
            _rows = _shared ? [.. Enumerable.Repeat(options[0], (int)batch)] : [.. options];
            _eos = [.. _rows.Select(o => (long[])[.. o.EosTokenIds ?? config.EosTokenIds, .. o.StopTokenIds])];
            _pad = [.. _rows.Select(o => config.PadTokenId ?? ((o.EosTokenIds ?? config.EosTokenIds) is { Count: > 0 } eos ? eos[0] : 0))];
            _forcedEos = ForcedEosTokenId(config);
            _generators = _shared
                ? [options[0].DoSample && options[0].Seed is { } seed ? new Generator(unchecked((ulong)seed), device) : null]
                : [.. _rows.Select(o => o.DoSample && o.Seed is { } s ? new Generator(unchecked((ulong)s), device) : null)];
            _observer = observer;
            _done = new bool[batch];
            _newTokens = new int[batch];
            _reasons = new FinishReason?[batch];
            _finished = torch.zeros(batch, ScalarType.Bool, device).DetachFromDisposeScope();
            MaxNewTokens = _rows.Length == 0 ? 0 : _rows.Max(o => o.MaxNewTokens);
        }

        /// <summary>Steps to run at most: the largest row limit.</summary>
        public int MaxNewTokens { get; }

        public bool AllFinished => _done.All(d => d);

        /// <summary>The next token of every row from the last position's logits (batch, vocab).</summary>
        public Tensor Next(Tensor logits, int stepIndex)
        {
            var before = (bool[])_done.Clone();
            Tensor next;
            if (_shared)
            {
                var options = _rows[0];
                next = _forcedEos is { } forced && stepIndex == options.MaxNewTokens - 1
                    ? torch.full(_done.Length, forced, ScalarType.Int64, logits.device)
                    : options.DoSample ? Sample(logits, options, _generators[0]) : logits.argmax(-1);
                next = torch.where(_finished, torch.full_like(next, _pad[0]), next);
                var finished = _finished;
                foreach (var id in _eos[0]) finished = finished.logical_or(next.eq(id));
                SetFinished(finished);
                var now = finished.cpu().data<bool>().ToArray();
                for (int row = 0; row < now.Length; row++) MarkDone(row, now[row], FinishReason.Stop);
            }
            else
            {
                var ids = logits.argmax(-1).cpu().data<long>().ToArray();
                for (int row = 0; row < ids.Length; row++)
                {
                    var options = _rows[row];
                    if (before[row])
                    {
                        ids[row] = _pad[row];
                        continue;
                    }
                    if (_forcedEos is { } forced && stepIndex == options.MaxNewTokens - 1) ids[row] = forced;
                    else if (options.DoSample) ids[row] = Sample(logits[row..(row + 1)], options, _generators[row]).item<long>();
                    if (_eos[row].Contains(ids[row])) MarkDone(row, true, FinishReason.Stop);
                }
                next = torch.tensor(ids, device: logits.device);
            }
            for (int row = 0; row < _done.Length; row++)
            {
                if (before[row]) continue;
                _newTokens[row]++;
                if (!_done[row] && _newTokens[row] >= _rows[row].MaxNewTokens) MarkDone(row, true, FinishReason.Length);
            }
            if (_observer is not null)
            {
                var tokens = next.cpu().data<long>().ToArray();
                _observer.OnStep(stepIndex, tokens, before);
                for (int row = 0; row < _done.Length; row++)
                {
                    if (!_done[row] && _observer.ShouldStop(row)) MarkDone(row, true, FinishReason.Cancelled);
                }
            }
            if (!_shared || _observer is not null) SyncFinished(logits.device);
            return next;
        }

        /// <summary>Marks rows whose new tokens (batch, new) decode to text containing one of their stop strings.</summary>
        public void CheckStopStrings(Tensor generated)
        {
            if (_rows.All(o => o.StopStrings.Count == 0)) return;
            var changed = false;
            for (int row = 0; row < _done.Length; row++)
            {
                var options = _rows[row];
                if (_done[row] || options.StopStrings.Count == 0) continue;
                var ids = generated[row].cpu().data<long>().ToArray()[.._newTokens[row]].Select(i => checked((int)i)).ToList();
                var text = options.Decode!(ids);
                if (options.StopStrings.Any(stop => text.Contains(stop, StringComparison.Ordinal)))
                {
                    // A row that ended by its limit on this very step still ended on its stop string.
                    _done[row] = true;
                    _reasons[row] = FinishReason.Stop;
                    changed = true;
                }
            }
            if (changed) SyncFinished(_finished.device);
        }

        /// <summary>Why <paramref name="row"/> ended, or null while it decodes.</summary>
        public FinishReason? ReasonOf(int row) => _done[row] ? _reasons[row] ?? FinishReason.Length : null;

        /// <summary>The outcome per row over the sequences the loop produced.</summary>
        public GeneratedBatch Result(Tensor sequences)
        {
            var promptLength = sequences.shape[1] - _newTokens.DefaultIfEmpty(0).Max();
            var all = sequences.cpu().data<long>().ToArray();
            var width = (int)sequences.shape[1];
            var tokens = new long[_done.Length][];
            for (int row = 0; row < tokens.Length; row++)
            {
                var start = row * width + (int)promptLength;
                tokens[row] = all[start..(start + _newTokens[row])];
            }
            return new GeneratedBatch(sequences, tokens, [.. _reasons.Select(r => r ?? FinishReason.Length)]);
        }

        /// <summary>Frees the finished-row mask and the generators (the picker outlives the loop's dispose scope).</summary>
        public void Dispose()
        {
            _finished.Dispose();
            foreach (var generator in _generators) generator?.Dispose();
        }

        private void MarkDone(int row, bool done, FinishReason reason)
        {
            if (!done || _done[row]) return;
            _done[row] = true;
            _reasons[row] = reason;
        }

        private void SetFinished(Tensor finished)
        {
            var old = _finished;
            _finished = finished.DetachFromDisposeScope();
            if (!ReferenceEquals(old, _finished)) old.Dispose();
        }

        private void SyncFinished(Device device) => SetFinished(torch.tensor(_done, device: device));

        private static Tensor Sample(Tensor logits, GenerationOptions options, Generator? generator)
        {
            var scores = logits.to(ScalarType.Float32);
            if (options.Temperature != 1.0) scores = scores / options.Temperature;
            if (options.TopK > 0 && options.TopK < scores.shape[^1])
            {
                var kth = scores.topk(options.TopK, dim: -1).values[.., ^1..];
                scores = scores.masked_fill(scores.lt(kth), double.NegativeInfinity);
            }
            if (options.TopP < 1.0)
            {
                // transformers' TopPLogitsWarper: sort ascending, drop the tokens whose cumulative probability stays ≤ 1 − p, never the most likely one.
                var (sorted, indices) = scores.sort(dim: -1, descending: false);
                var cumulative = sorted.softmax(-1).cumsum(-1);
                var remove = cumulative.le(1 - options.TopP);
                remove[.., ^1] = torch.tensor(false);
                scores = scores.masked_fill(remove.scatter(-1, indices, remove), double.NegativeInfinity);
            }
            return torch.multinomial(scores.softmax(-1), 1, generator: generator).squeeze(-1);
        }

        /// <summary>
        /// <c>forced_eos_token_id</c> from config.json (BART and kin), which transformers' generation turns into a
        /// processor forcing that id when the sequence reaches its maximum length.
        /// </summary>
        private static long? ForcedEosTokenId(ModelConfig config) =>
            config.ExtensionData?.TryGetValue("forced_eos_token_id", out var value) == true && value.ValueKind == JsonValueKind.Number
                ? value.GetInt64()
                : null;
    }
}

/// <summary>Why a row stopped.</summary>
public enum FinishReason
{
    /// <summary>An end-of-sequence id, a stop id or a stop string (OpenAI's <c>"stop"</c>).</summary>
    Stop,

    /// <summary>The row's token limit (OpenAI's <c>"length"</c>).</summary>
    Length,

    /// <summary>Its <see cref="IGenerationObserver"/> asked it to stop (the client went away).</summary>
    Cancelled,
}

/// <summary>What <see cref="Generation.GenerateRows"/> produced.</summary>
/// <param name="Sequences">The whole batch, as <see cref="Generation.Generate"/> returns it (finished rows padded); the caller disposes it.</param>
/// <param name="Tokens">Each row's new tokens, ending with the end-of-sequence or stop id that ended it, without padding.</param>
/// <param name="FinishReasons">Why each row ended.</param>
public sealed record GeneratedBatch(Tensor Sequences, IReadOnlyList<long[]> Tokens, IReadOnlyList<FinishReason> FinishReasons);

/// <summary>Watches a <see cref="Generation.GenerateRows"/> run step by step (streaming) and may stop rows (cancelled requests).</summary>
public interface IGenerationObserver
{
    /// <summary>After each step: the token every row got (padding for rows already finished, which <paramref name="finishedBefore"/> marks).</summary>
    /// <param name="step">The zero-based step.</param>
    /// <param name="tokens">One id per row.</param>
    /// <param name="finishedBefore">Rows that had finished before this step (their token is padding).</param>
    void OnStep(int step, IReadOnlyList<long> tokens, IReadOnlyList<bool> finishedBefore);

    /// <summary>Whether <paramref name="row"/> should stop now; it is then padded and reported as <see cref="FinishReason.Cancelled"/>.</summary>
    bool ShouldStop(int row);
}
