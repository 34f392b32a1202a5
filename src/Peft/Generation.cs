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
public static partial class Generation
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
        using var picker = new TokenPicker(config, inputIds.shape[0], inputIds.device, [options]);
        return Run(model, config, inputIds, attentionMask, picker, encoderDecoder);
    }

    /// <summary>
    /// Decoding with options per row: each row has its own sampling settings, seed, stop ids, stop strings and
    /// token limit (a row is padded once it has finished). A row decodes exactly as it would alone with its
    /// options (greedy rows take the argmax; a seeded row draws from its own generator).
    /// </summary>
    /// <param name="model">The model to run.</param>
    /// <param name="config">Its config (end-of-sequence, padding and start ids).</param>
    /// <param name="inputIds">Prompt ids (decoder-only, left-padded when lengths differ) or encoder input ids, (batch, seq).</param>
    /// <param name="attentionMask">Their padding mask, or null for all ones.</param>
    /// <param name="rowOptions">One options object per row, or a single one for every row.</param>
    /// <param name="encoderDecoder">As for <see cref="Greedy"/>.</param>
    /// <param name="observer">Told each step's tokens and asked which rows to stop (streaming, cancelled requests); may be null.</param>
    /// <returns>The sequences, and for each row its new tokens and why it ended.</returns>
    public static GeneratedBatch GenerateRows(nn.Module<ModelInputs, ModelOutputs> model, ModelConfig config, Tensor inputIds, Tensor? attentionMask,
        IReadOnlyList<GenerationOptions> rowOptions, bool? encoderDecoder = null, IGenerationObserver? observer = null)
    {
        var batch = inputIds.shape[0];
        if (rowOptions.Count != 1 && rowOptions.Count != batch)
        {
            throw new ArgumentException($"Give one GenerationOptions per row ({batch}) or one for all rows, not {rowOptions.Count}.", nameof(rowOptions));
        }
        foreach (var options in rowOptions) options.Validate();
        using var picker = new TokenPicker(config, batch, inputIds.device, rowOptions.Count == batch && batch > 1 ? rowOptions : [.. Enumerable.Repeat(rowOptions[0], (int)batch)], observer);
        var sequences = Run(model, config, inputIds, attentionMask, picker, encoderDecoder);
        return picker.Result(sequences);
    }

    private static Tensor Run(nn.Module<ModelInputs, ModelOutputs> model, ModelConfig config, Tensor inputIds, Tensor? attentionMask, TokenPicker picker, bool? encoderDecoder)
    {
        var isEncoderDecoder = encoderDecoder ?? model switch
        {
            PeftModel peft => peft.Model.IsEncoderDecoder,
            PreTrainedModel pretrained => pretrained.IsEncoderDecoder,
            _ => false,
        };
        return isEncoderDecoder
            ? GreedyEncoderDecoder(model, config, inputIds, attentionMask, picker)
            : GreedyDecoderOnly(model, inputIds, attentionMask, picker);
    }

    private static Tensor GreedyDecoderOnly(nn.Module<ModelInputs, ModelOutputs> model, Tensor inputIds, Tensor? attentionMask, TokenPicker picker)
    {
        var maxNewTokens = picker.MaxNewTokens;
        using var noGrad = torch.no_grad();
        using var scope = torch.NewDisposeScope();
        var mask = attentionMask ?? torch.ones_like(inputIds);
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
    private static Tensor GreedyEncoderDecoder(nn.Module<ModelInputs, ModelOutputs> model, ModelConfig config, Tensor inputIds, Tensor? attentionMask, TokenPicker picker)
    {
        var maxNewTokens = picker.MaxNewTokens;
        using var noGrad = torch.no_grad();
        using var scope = torch.NewDisposeScope();
        var batch = inputIds.shape[0];
        var start = config.DecoderStartTokenId ?? config.BosTokenId
            ?? throw new InvalidOperationException("Encoder-decoder generation needs decoder_start_token_id (or bos_token_id) in config.json.");
        var mask = attentionMask ?? torch.ones_like(inputIds);
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
    internal static Tensor PositionsFromMask(Tensor mask, long count)
    {
        var positions = mask.to(ScalarType.Int64).cumsum(-1) - 1;
        positions = positions.masked_fill(mask.eq(0), 1);
        return positions[.., ^(int)count..];
    }

    /// <summary>Left-extends a mask with ones up to <paramref name="length"/> columns (virtual tokens are always attended).</summary>
    private static Tensor PadMaskTo(Tensor mask, long length) =>
        mask.shape[1] >= length ? mask : torch.cat([torch.ones(mask.shape[0], length - mask.shape[1], mask.dtype, mask.device), mask], dim: 1);
}
