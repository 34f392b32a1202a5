using Peft.Modeling;
using TorchSharp;
using static TorchSharp.torch;

namespace Peft.Serving;

/// <summary>A prompt joining a <see cref="ContinuousBatch"/>: its ids, the adapter its row uses, its decoding options.</summary>
/// <param name="PromptIds">The prompt (at least one id).</param>
/// <param name="Adapter">The adapter's name, or <see cref="PeftModel.BaseModelName"/>.</param>
/// <param name="Options">Sampling, seed, stops and token limit of this row.</param>
public sealed record ContinuousRow(IReadOnlyList<int> PromptIds, string Adapter, GenerationOptions Options);

/// <summary>A row's token from one call: which row, the id, and why the row ended if it did with this token.</summary>
/// <param name="Row">The row's id, as <see cref="ContinuousBatch.Join"/> gave it.</param>
/// <param name="Token">The new token (none when <paramref name="Finished"/> is <see cref="FinishReason.Cancelled"/>).</param>
/// <param name="Finished">Why the row ended, or null while it goes on.</param>
public readonly record struct RowToken(int Row, long? Token, FinishReason? Finished);

/// <summary>
/// Continuous batching for a decoder-only model (vLLM's and LoRAX's scheduling, on this library's per-row adapters):
/// rows join between decoding steps and leave as they finish, each with its own adapter and options. A joining
/// prompt is prefilled on its own; its key/value cache is then appended to the batch's, the shorter left-padded and
/// masked, so that every row keeps its own positions (taken from its mask, as for any left-padded batch) and decodes
/// as it would alone. Finished rows are dropped from the cache, and columns no row attends any more are trimmed.
/// </summary>
/// <remarks>Not thread-safe: one loop owns a batch (the model itself may serve other calls meanwhile).</remarks>
public sealed class ContinuousBatch : IDisposable
{
    private readonly PeftModel _model;
    private readonly long _padId;
    private readonly Device _device;
    private readonly List<RowState> _rows = [];
    private KeyValueCache? _cache;
    private Tensor? _mask;
    private int _nextId;

    /// <summary>An empty batch over <paramref name="model"/>.</summary>
    /// <exception cref="NotSupportedException">The model is an encoder-decoder (its cross-attention cache is per prompt).</exception>
    public ContinuousBatch(PeftModel model)
    {
        ArgumentNullException.ThrowIfNull(model);
        if (model.Model.IsEncoderDecoder) throw new NotSupportedException("Continuous batching is for decoder-only models; encoder-decoder models decode batch by batch (PeftModel.Generate).");
        _model = model;
        var config = model.Model.Config;
        // Padding is masked, so any id the embedding has will do; an end-of-sequence id can lie outside a small vocabulary.
        _padId = config.PadTokenId ?? 0;
        _device = model.Model.parameters().FirstOrDefault()?.device ?? torch.CPU;
    }

    /// <summary>Rows decoding now.</summary>
    public int Count => _rows.Count;

    /// <summary>Prefills <paramref name="rows"/> (one forward for all of them, each through its adapter) and adds them to the batch.</summary>
    /// <returns>Each new row's first token; rows already finished by it (a one-token limit, an end-of-sequence) have left.</returns>
    /// <exception cref="ArgumentException">An empty prompt, an unknown adapter or bad options (named).</exception>
    public IReadOnlyList<RowToken> Join(IReadOnlyList<ContinuousRow> rows)
    {
        ArgumentNullException.ThrowIfNull(rows);
        if (rows.Count == 0) return [];
        foreach (var row in rows)
        {
            if (row.PromptIds.Count == 0) throw new ArgumentException("A prompt has no tokens.", nameof(rows));
            row.Options.Validate();
        }
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        var width = rows.Max(r => r.PromptIds.Count);
        var ids = new long[rows.Count * width];
        var mask = new long[rows.Count * width];
        for (int i = 0; i < rows.Count; i++)
        {
            var prompt = rows[i].PromptIds;
            Array.Fill(ids, _padId, i * width, width - prompt.Count);
            for (int j = 0; j < prompt.Count; j++) (ids[i * width + width - prompt.Count + j], mask[i * width + width - prompt.Count + j]) = (prompt[j], 1);
        }
        var joinMask = torch.tensor(mask, [rows.Count, width], device: _device);
        var output = _model.Forward(new ModelInputs
        {
            InputIds = torch.tensor(ids, [rows.Count, width], device: _device),
            AttentionMask = joinMask,
            PositionIds = Generation.PositionsFromMask(joinMask, width),
            UseCache = true,
        }, [.. rows.Select(r => r.Adapter)]);
        var joined = output.PastKeyValues ?? throw new InvalidOperationException($"{_model.Model.GetType().Name} returned no key/value cache.");
        var states = rows.Select(r => new RowState(_nextId++, r, _model.Model.Config, _device)).ToList();
        Append(joined, joinMask, states);
        return Pick(states, output.Logits[.., -1]);
    }

    /// <summary>One decoding step for every row: each gets its next token; rows that end leave the batch.</summary>
    public IReadOnlyList<RowToken> Step()
    {
        if (_rows.Count == 0) return [];
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        var mask = torch.cat([_mask!, torch.ones(_rows.Count, 1, ScalarType.Int64, _device)], dim: 1);
        var output = _model.Forward(new ModelInputs
        {
            InputIds = torch.tensor(_rows.Select(r => r.Pending).ToArray(), [_rows.Count, 1], device: _device),
            AttentionMask = mask,
            PositionIds = Generation.PositionsFromMask(mask, 1),
            PastKeyValues = _cache,
            UseCache = true,
        }, [.. _rows.Select(r => r.Row.Adapter)]);
        SetMask(mask);
        return Pick(_rows, output.Logits[.., -1]);
    }

    /// <summary>Ends row <paramref name="row"/> now (a client that went away); it is reported as cancelled.</summary>
    /// <returns>The cancellation, or null when the row is not (or no longer) in the batch.</returns>
    public RowToken? Cancel(int row)
    {
        var state = _rows.FirstOrDefault(r => r.Id == row);
        if (state is null) return null;
        Leave([state]);
        return new RowToken(row, null, FinishReason.Cancelled);
    }

    private IReadOnlyList<RowToken> Pick(IReadOnlyList<RowState> rows, Tensor logits)
    {
        // rows[i] is logits row i: the joining rows after a prefill, every row after a step.
        var results = new List<RowToken>(rows.Count);
        var finished = new List<RowState>();
        for (int i = 0; i < rows.Count; i++)
        {
            var state = rows[i];
            var token = state.Picker.Next(logits[i..(i + 1)], state.Generated.Count).item<long>();
            state.Generated.Add(token);
            state.Pending = token;
            if (state.Row.Options.StopStrings.Count > 0) state.Picker.CheckStopStrings(torch.tensor(state.Generated.ToArray(), [1, state.Generated.Count]));
            var reason = state.Picker.ReasonOf(0);
            results.Add(new RowToken(state.Id, token, reason));
            if (reason is not null) finished.Add(state);
        }
        if (finished.Count > 0) Leave(finished);
        return results;
    }

    private void Leave(IReadOnlyList<RowState> finished)
    {
        foreach (var state in finished) state.Picker.Dispose();
        var keep = new List<long>();
        for (int i = 0; i < _rows.Count; i++)
        {
            if (!finished.Contains(_rows[i])) keep.Add(i);
        }
        _rows.RemoveAll(finished.Contains);
        Compact(keep);
    }

    /// <summary>Keeps the cache and mask rows at <paramref name="keep"/> and trims the columns no row attends any more.</summary>
    private void Compact(List<long> keep)
    {
        if (keep.Count == 0)
        {
            Clear();
            return;
        }
        using var scope = torch.NewDisposeScope();
        var rows = torch.tensor(keep.ToArray(), device: _device);
        _cache!.SelectRows(rows);
        var mask = _mask!.index_select(0, rows);
        var unattended = mask.sum(dim: 0).eq(0).to(ScalarType.Int64).cumprod(0).sum().item<long>();   // leading all-padding columns
        if (unattended > 0)
        {
            _cache.DropLeft(unattended);
            mask = mask[.., (int)unattended..];
        }
        SetMask(mask);
    }

    private void Append(KeyValueCache joined, Tensor joinMask, List<RowState> states)
    {
        if (_cache is null)
        {
            _cache = joined;
            SetMask(joinMask);
        }
        else
        {
            var merged = KeyValueCache.Concat(_cache, joined);
            _cache.Dispose();
            joined.Dispose();
            _cache = merged;
            var length = Math.Max(_mask!.shape[1], joinMask.shape[1]);
            SetMask(torch.cat([PadLeft(_mask, length), PadLeft(joinMask, length)], 0));
        }
        _rows.AddRange(states);
    }

    private static Tensor PadLeft(Tensor mask, long length) =>
        mask.shape[1] == length ? mask : torch.nn.functional.pad(mask, [length - mask.shape[1], 0]);

    private void SetMask(Tensor mask)
    {
        var old = _mask;
        _mask = mask.DetachFromDisposeScope();
        if (old is not null && !ReferenceEquals(old, _mask)) old.Dispose();
    }

    private void Clear()
    {
        _cache?.Dispose();
        _cache = null;
        _mask?.Dispose();
        _mask = null;
    }

    /// <inheritdoc />
    public void Dispose()
    {
        foreach (var state in _rows) state.Picker.Dispose();
        _rows.Clear();
        Clear();
    }

    private sealed class RowState(int id, ContinuousRow row, ModelConfig config, Device device)
    {
        public int Id { get; } = id;

        public ContinuousRow Row { get; } = row;

        public Generation.TokenPicker Picker { get; } = new(config, 1, device, [row.Options]);

        public List<long> Generated { get; } = [];

        public long Pending { get; set; }
    }
}
