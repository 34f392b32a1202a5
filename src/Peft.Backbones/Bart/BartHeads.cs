// BART with the language-model head, following transformers' BartForConditionalGeneration (models/bart/modeling_bart.py).
using Peft.Modeling;
using TorchSharp;
using static TorchSharp.torch;

namespace Peft.Backbones.Bart;

/// <summary>
/// BART with the language-model head: logits = decoder output × <c>model.shared</c>ᵀ (tied unless the config
/// unties it) + the <c>final_logits_bias</c> buffer.
/// </summary>
/// <remarks>
/// Inputs: <see cref="ModelInputs.InputIds"/> or <see cref="ModelInputs.InputsEmbeds"/> (already scaled, used as
/// they are) with <see cref="ModelInputs.AttentionMask"/> feed the encoder, unless
/// <see cref="ModelInputs.EncoderHiddenStates"/> carries its output (AttentionMask then masks those positions).
/// The decoder reads <see cref="ModelInputs.DecoderInputIds"/> or <see cref="ModelInputs.DecoderInputsEmbeds"/>,
/// else the labels (or, without labels, the input ids) shifted right behind <c>decoder_start_token_id</c>.
/// <see cref="ModelInputs.PastKeyValues"/> holds the decoder self-attention keys/values, one entry per decoder
/// layer (prefix tuning's prefixes or the generation cache); decoder positions continue after its length.
/// <see cref="ModelInputs.CrossAttentionCache"/> holds the projected encoder keys/values. The encoder takes no prefixes.
/// </remarks>
[TargetModules("lm_head")]
public sealed partial class BartForConditionalGeneration : PreTrainedModel
{
    private readonly BartModel model;
    private nn.Module<Tensor, Tensor> lm_head;
    private readonly Tensor final_logits_bias;
    private bool _tied;

    /// <summary>A randomly initialised model.</summary>
    public BartForConditionalGeneration(BartConfig config) : base(nameof(BartForConditionalGeneration), config, TaskType.Seq2SeqLM)
    {
        Bart = config;
        model = new BartModel(config);
        _tied = config.TieWordEmbeddings;
        lm_head = _tied ? TiedHead(model.Shared) : nn.Linear(config.DModel, config.VocabSize, hasBias: false);
        final_logits_bias = torch.zeros(1, config.VocabSize);
        RegisterComponents();
    }

    /// <summary>The config.</summary>
    public BartConfig Bart { get; }

    /// <inheritdoc />
    public override bool IsEncoderDecoder => true;

    /// <summary>
    /// <c>model.shared</c> without the <c>scale_embedding</c> factor (TorchSharp's embedding cannot carry it): with
    /// <c>scale_embedding: true</c>, callers that embed ids themselves (prompt learning) multiply by
    /// <see cref="BartConfig.EmbedScale"/>, which the reference's <c>BartScaledWordEmbedding</c> includes.
    /// </summary>
    public override nn.Module<Tensor, Tensor> InputEmbeddings => model.Shared;

    /// <inheritdoc />
    public override string BaseModelPrefix => "model";

    /// <summary>
    /// Prefixes enter the decoder's self-attention only (see the class remarks). LayerCount is the decoder's
    /// layers (the layers of <see cref="ModelInputs.PastKeyValues"/>), EncoderLayerCount the encoder's (the
    /// reference's default <c>num_layers</c>, its <c>num_hidden_layers</c>).
    /// </summary>
    public override PromptLayout PromptLayout =>
        new(Bart.DecoderLayers, Bart.DecoderAttentionHeads, Bart.DModel / Bart.DecoderAttentionHeads, Bart.DModel,
            IsEncoderDecoder: true, EncoderLayerCount: Bart.EncoderLayers);

    /// <summary>
    /// Both stacks' <c>embed_tokens</c> share <c>model.shared.weight</c> whatever the config says (transformers 5 ties
    /// them always; <c>tie_word_embeddings</c> is about the head), and so does <c>lm_head</c> while tied.
    /// </summary>
    public override IReadOnlyList<(string Tied, string Source)> TiedWeights =>
    [
        ("model.encoder.embed_tokens.weight", "model.shared.weight"),
        ("model.decoder.embed_tokens.weight", "model.shared.weight"),
        .. _tied ? [("lm_head.weight", "model.shared.weight")] : Array.Empty<(string, string)>(),
    ];

    /// <inheritdoc />
    public override void UntieOutputEmbeddings()
    {
        if (!_tied) return;
        if (HeadLinear(lm_head) is { } head) Untie(head);
        _tied = false;
        OutputEmbeddingsUntied = true;
    }

    /// <inheritdoc />
    public override ModelOutputs forward(ModelInputs inputs)
    {
        using var scope = torch.NewDisposeScope();
        var pad = Config.PadTokenId ?? 1;
        var start = Config.DecoderStartTokenId ?? Config.BosTokenId ?? throw new InvalidOperationException("BART needs decoder_start_token_id in config.json.");
        var decoderIds = inputs.DecoderInputIds;
        if (decoderIds is null && inputs.DecoderInputsEmbeds is null)
        {
            var source = inputs.Labels ?? inputs.InputIds
                ?? throw new ArgumentException("BART needs decoder_input_ids, decoder_inputs_embeds, labels or input_ids.");
            decoderIds = EncoderDecoder.ShiftTokensRight(source, pad, start);
        }

        var encoderHidden = inputs.EncoderHiddenStates;
        if (encoderHidden is null)
        {
            encoderHidden = model.Encoder.forward(inputs.InputIds, inputs.InputsEmbeds, inputs.AttentionMask).MoveToOuterDisposeScope();
        }
        else
        {
            EncoderDecoder.CheckEncoderMask(inputs.AttentionMask, encoderHidden);
        }

        var decoder = model.Decoder;
        var cache = inputs.PastKeyValues ?? (inputs.UseCache ? new KeyValueCache(decoder.LayerCount) : null);
        var crossCache = inputs.CrossAttentionCache ?? (inputs.UseCache ? new KeyValueCache(decoder.LayerCount) : null);
        var hidden = decoder.forward(new StackInputs
        {
            InputIds = decoderIds, InputsEmbeds = inputs.DecoderInputsEmbeds, AttentionMask = inputs.DecoderAttentionMask,
            EncoderHidden = encoderHidden, EncoderAttentionMask = inputs.AttentionMask, Cache = cache, CrossCache = crossCache,
        });

        var logits = lm_head.call(hidden) + final_logits_bias;
        var loss = inputs.Labels is null ? null : EncoderDecoder.Loss(logits, inputs.Labels);
        return new ModelOutputs
        {
            Logits = logits.MoveToOuterDisposeScope(),
            Loss = loss?.MoveToOuterDisposeScope(),
            PastKeyValues = cache,
            CrossAttentionCache = crossCache,
            EncoderLastHiddenState = encoderHidden,
        };
    }
}
