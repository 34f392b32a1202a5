using System.Text.Json;
using Peft.Modeling;
using TorchSharp;
using static TorchSharp.torch;

namespace Peft;

public sealed partial class PeftModel
{
    /// <summary>
    /// Greedy decoding with the KV cache (generate(do_sample=False)): the prompt runs once with the
    /// active adapter's virtual tokens or prefixes, then one token per step.
    /// </summary>
    /// <param name="inputIds">Prompt ids, (batch, seq); for encoder-decoder models, the encoder input.</param>
    /// <param name="attentionMask">Padding mask of the prompt, or null for all ones.</param>
    /// <param name="maxNewTokens">Tokens to add.</param>
    /// <returns>
    /// Decoder-only models: the prompt followed by the new tokens, (batch, seq + new). Encoder-decoder models:
    /// the decoder's sequence, <c>decoder_start_token_id</c> followed by the new tokens, (batch, 1 + new).
    /// </returns>
    public Tensor Generate(Tensor inputIds, Tensor? attentionMask = null, int maxNewTokens = 20) =>
        Generation.Greedy(this, Model.Config, inputIds, attentionMask, maxNewTokens, Model.IsEncoderDecoder);

    /// <summary>Decoding as <paramref name="options"/> say: greedy, or sampling with temperature, top-k, top-p and a seed; stop ids and stop strings.</summary>
    /// <param name="inputIds">Prompt ids, (batch, seq); for encoder-decoder models, the encoder input.</param>
    /// <param name="attentionMask">Padding mask of the prompt, or null for all ones.</param>
    /// <param name="options">The decoding options (<see cref="GenerationOptions.FromDirectory"/> reads generation_config.json).</param>
    public Tensor Generate(Tensor inputIds, Tensor? attentionMask, GenerationOptions options) =>
        Generation.Generate(this, Model.Config, inputIds, attentionMask, options, Model.IsEncoderDecoder);
}

/// <summary>
/// Greedy decoding for decoder-only and encoder-decoder models, as transformers' generate(do_sample=False):
/// stops when every row has produced an end-of-sequence id, pads finished rows, and forces
/// <c>forced_eos_token_id</c> (when config.json sets it) as the last token.
/// </summary>
public static class Generation
{
    /// <summary>Greedy decoding of <paramref name="model"/> (a base model or a <see cref="PeftModel"/>).</summary>
    /// <param name="model">The model to run.</param>
    /// <param name="config">Its config (end-of-sequence, padding and start ids).</param>
    /// <param name="inputIds">Prompt ids (decoder-only) or encoder input ids (encoder-decoder), (batch, seq).</param>
    /// <param name="attentionMask">Their padding mask, or null for all ones.</param>
    /// <param name="maxNewTokens">Tokens to add.</param>
    /// <param name="encoderDecoder">
    /// Run the encoder once and decode from <c>decoder_start_token_id</c>; null decides from the model
    /// (<see cref="PreTrainedModel.IsEncoderDecoder"/>).
    /// </param>
    public static Tensor Greedy(nn.Module<ModelInputs, ModelOutputs> model, ModelConfig config, Tensor inputIds, Tensor? attentionMask, int maxNewTokens, bool? encoderDecoder = null) =>
        Generate(model, config, inputIds, attentionMask, new GenerationOptions { MaxNewTokens = maxNewTokens }, encoderDecoder);

    /// <summary>Decoding of <paramref name="model"/> as <paramref name="options"/> say (greedy unless <see cref="GenerationOptions.DoSample"/>).</summary>
    /// <param name="model">The model to run.</param>
    /// <param name="config">Its config (end-of-sequence, padding and start ids).</param>
    /// <param name="inputIds">Prompt ids (decoder-only) or encoder input ids (encoder-decoder), (batch, seq).</param>
    /// <param name="attentionMask">Their padding mask, or null for all ones.</param>
    /// <param name="options">How tokens are picked and when rows stop.</param>
    /// <param name="encoderDecoder">As for <see cref="Greedy"/>.</param>
    public static Tensor Generate(nn.Module<ModelInputs, ModelOutputs> model, ModelConfig config, Tensor inputIds, Tensor? attentionMask, GenerationOptions options, bool? encoderDecoder = null)
    {
        options.Validate();
        var maxNewTokens = options.MaxNewTokens;
        var isEncoderDecoder = encoderDecoder ?? model switch
        {
            PeftModel peft => peft.Model.IsEncoderDecoder,
            PreTrainedModel pretrained => pretrained.IsEncoderDecoder,
            _ => false,
        };
        return isEncoderDecoder
            ? GreedyEncoderDecoder(model, config, inputIds, attentionMask, options)
            : GreedyDecoderOnly(model, config, inputIds, attentionMask, options);
    }

    private static Tensor GreedyDecoderOnly(nn.Module<ModelInputs, ModelOutputs> model, ModelConfig config, Tensor inputIds, Tensor? attentionMask, GenerationOptions options)
    {
        var maxNewTokens = options.MaxNewTokens;
        using var noGrad = torch.no_grad();
        using var scope = torch.NewDisposeScope();
        var mask = attentionMask ?? torch.ones_like(inputIds);
        var picker = new TokenPicker(config, inputIds.shape[0], inputIds.device, options);
        var sequence = inputIds;
        KeyValueCache? cache = null;
        // Left padding: positions count real tokens only (transformers derives them from the mask).
        var leftPadded = mask.eq(0).any().item<bool>();
        var step = new ModelInputs { InputIds = inputIds, AttentionMask = mask, PositionIds = leftPadded ? PositionsFromMask(mask, inputIds.shape[1]) : null, UseCache = true };
        try
        {
            for (int i = 0; i < maxNewTokens; i++)
            {
                var output = model.call(step);
                cache = output.PastKeyValues;
                var next = picker.Next(output.Logits[.., -1], i);
                sequence = torch.cat([sequence, next.unsqueeze(1)], dim: 1);
                picker.CheckStopStrings(sequence[.., (int)inputIds.shape[1]..]);
                if (picker.AllFinished) break;
                // After the first step the cache holds any virtual tokens, so the mask is rebuilt from its length.
                var past = cache?.Length ?? sequence.shape[1] - 1;
                mask = torch.cat([PadMaskTo(mask, past), torch.ones(mask.shape[0], 1, mask.dtype, mask.device)], dim: 1);
                step = new ModelInputs
                {
                    InputIds = next.unsqueeze(1),
                    AttentionMask = mask,
                    PositionIds = leftPadded ? PositionsFromMask(mask, 1) : null,
                    PastKeyValues = cache,
                    UseCache = true,
                };
            }
            return sequence.MoveToOuterDisposeScope();
        }
        finally
        {
            cache?.Dispose();
        }
    }

    /// <summary>
    /// The encoder runs once, in the first step, on the inputs the active adapter prepared (prompt tuning puts
    /// its virtual tokens in front of them; the mask is then left-extended with ones to the encoder output's
    /// length). Later steps pass that output as <see cref="ModelInputs.EncoderHiddenStates"/> with the decoder
    /// self-attention cache (which starts with any prefix-tuning prefixes) and the cross-attention cache.
    /// </summary>
    private static Tensor GreedyEncoderDecoder(nn.Module<ModelInputs, ModelOutputs> model, ModelConfig config, Tensor inputIds, Tensor? attentionMask, GenerationOptions options)
    {
        var maxNewTokens = options.MaxNewTokens;
        using var noGrad = torch.no_grad();
        using var scope = torch.NewDisposeScope();
        var batch = inputIds.shape[0];
        var start = config.DecoderStartTokenId ?? config.BosTokenId
            ?? throw new InvalidOperationException("Encoder-decoder generation needs decoder_start_token_id (or bos_token_id) in config.json.");
        var mask = attentionMask ?? torch.ones_like(inputIds);
        var picker = new TokenPicker(config, batch, inputIds.device, options);
        var sequence = torch.full(batch, 1, start, ScalarType.Int64, inputIds.device);
        KeyValueCache? cache = null, crossCache = null;
        var step = new ModelInputs { InputIds = inputIds, AttentionMask = mask, DecoderInputIds = sequence, UseCache = true };
        try
        {
            Tensor? encoderHidden = null;
            for (int i = 0; i < maxNewTokens; i++)
            {
                var output = model.call(step);
                cache = output.PastKeyValues;
                crossCache = output.CrossAttentionCache;
                encoderHidden ??= output.EncoderLastHiddenState
                    ?? throw new InvalidOperationException($"{model.GetType().Name} returned no encoder output.");
                var next = picker.Next(output.Logits[.., -1], i);
                sequence = torch.cat([sequence, next.unsqueeze(1)], dim: 1);
                picker.CheckStopStrings(sequence[.., 1..]);
                if (picker.AllFinished) break;
                step = new ModelInputs
                {
                    EncoderHiddenStates = encoderHidden,
                    AttentionMask = PadMaskTo(mask, encoderHidden.shape[1]),
                    DecoderInputIds = next.unsqueeze(1),
                    PastKeyValues = cache,
                    CrossAttentionCache = crossCache,
                    UseCache = true,
                };
            }
            return sequence.MoveToOuterDisposeScope();
        }
        finally
        {
            cache?.Dispose();
            crossCache?.Dispose();
        }
    }

    /// <summary>The positions of the last <paramref name="count"/> columns: real tokens counted from 0, padding at 1 (as transformers).</summary>
    private static Tensor PositionsFromMask(Tensor mask, long count)
    {
        var positions = mask.to(ScalarType.Int64).cumsum(-1) - 1;
        positions = positions.masked_fill(mask.eq(0), 1);
        return positions[.., ^(int)count..];
    }

    /// <summary>Left-extends a mask with ones up to <paramref name="length"/> columns (virtual tokens are always attended).</summary>
    private static Tensor PadMaskTo(Tensor mask, long length) =>
        mask.shape[1] >= length ? mask : torch.cat([torch.ones(mask.shape[0], length - mask.shape[1], mask.dtype, mask.device), mask], dim: 1);

    /// <summary>
    /// The choice per step: argmax (greedy) or a sample after temperature, top-k and top-p (transformers' warpers,
    /// in that order); forced end-of-sequence at the last step; padding for finished rows; a row finishes on an
    /// end-of-sequence or stop id, or when its new tokens contain a stop string.
    /// </summary>
    private sealed class TokenPicker(ModelConfig config, long batch, Device device, GenerationOptions options)
    {
        private readonly IReadOnlyList<long> _eos = [.. options.EosTokenIds ?? config.EosTokenIds, .. options.StopTokenIds];
        private readonly long _pad = config.PadTokenId ?? ((options.EosTokenIds ?? config.EosTokenIds) is { Count: > 0 } eos ? eos[0] : 0);
        private readonly long? _forcedEos = ForcedEosTokenId(config);
        private readonly Generator? _generator = options.DoSample && options.Seed is { } seed ? new Generator(unchecked((ulong)seed), device) : null;
        private Tensor _finished = torch.zeros(batch, ScalarType.Bool, device);

        public bool AllFinished => _finished.all().item<bool>();

        /// <summary>The next token of every row from the last position's logits (batch, vocab).</summary>
        public Tensor Next(Tensor logits, int stepIndex)
        {
            var next = _forcedEos is { } forced && stepIndex == options.MaxNewTokens - 1
                ? torch.full(batch, forced, ScalarType.Int64, logits.device)
                : options.DoSample ? Sample(logits) : logits.argmax(-1);
            next = torch.where(_finished, torch.full_like(next, _pad), next);
            foreach (var id in _eos) _finished = _finished.logical_or(next.eq(id));
            return next;
        }

        /// <summary>Marks rows whose new tokens (batch, new) decode to text containing a stop string.</summary>
        public void CheckStopStrings(Tensor generated)
        {
            if (options.StopStrings.Count == 0) return;
            var finished = _finished.cpu().data<bool>().ToArray();
            var changed = false;
            for (int row = 0; row < finished.Length; row++)
            {
                if (finished[row]) continue;
                var ids = generated[row].cpu().data<long>().ToArray().Select(i => checked((int)i)).ToList();
                var text = options.Decode!(ids);
                if (options.StopStrings.Any(stop => text.Contains(stop, StringComparison.Ordinal))) (finished[row], changed) = (true, true);
            }
            if (changed) _finished = torch.tensor(finished, device: _finished.device);
        }

        private Tensor Sample(Tensor logits)
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
            return torch.multinomial(scores.softmax(-1), 1, generator: _generator).squeeze(-1);
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
