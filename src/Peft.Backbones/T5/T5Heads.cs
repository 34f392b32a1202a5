// T5 / mT5 with the language-model head, following transformers' T5ForConditionalGeneration and
// MT5ForConditionalGeneration (models/t5/modeling_t5.py, models/mt5/modeling_mt5.py).
using Peft.Modeling;
using TorchSharp;
using static TorchSharp.torch;

namespace Peft.Backbones.T5;

/// <summary>
/// The encoder-decoder with its language-model head. Both stacks embed tokens with <c>shared</c>'s weight; so does
/// <c>lm_head</c> unless the config unties it (a tied head reads the base weight, never an adapter's delta on it,
/// as the reference's does). T5 multiplies the
/// decoder output by d_model^-0.5 before the head when <see cref="T5Config.ScaleDecoderOutputs"/>; mT5 never does.
/// </summary>
/// <remarks>
/// Inputs: <see cref="ModelInputs.InputIds"/> or <see cref="ModelInputs.InputsEmbeds"/> with
/// <see cref="ModelInputs.AttentionMask"/> feed the encoder, unless <see cref="ModelInputs.EncoderHiddenStates"/>
/// carries its output already (AttentionMask then masks those positions). The decoder reads
/// <see cref="ModelInputs.DecoderInputIds"/> or <see cref="ModelInputs.DecoderInputsEmbeds"/>, or the labels
/// shifted right behind <c>decoder_start_token_id</c>, with <see cref="ModelInputs.DecoderAttentionMask"/>
/// covering past (cache or prefix) and new positions. <see cref="ModelInputs.PastKeyValues"/> holds the decoder
/// self-attention keys/values (prefix tuning's prefixes, or the generation cache), one entry per decoder layer;
/// <see cref="ModelInputs.CrossAttentionCache"/> the projected encoder keys/values. The encoder takes no prefixes.
/// </remarks>
[TargetModules("shared", "lm_head")]
public sealed partial class T5ForConditionalGeneration : PreTrainedModel
{
    private nn.Module<Tensor, Tensor> shared;
    private readonly T5Stack encoder;
    private readonly T5Stack decoder;
    private nn.Module<Tensor, Tensor> lm_head;
    private bool _tied;

    /// <summary>A randomly initialised model.</summary>
    public T5ForConditionalGeneration(T5Config config)
        : base(config.IsMT5 ? "MT5ForConditionalGeneration" : "T5ForConditionalGeneration", config, TaskType.Seq2SeqLM)
    {
        T5 = config;
        var embedding = Peft.Layers.Embeddings.Create(config.VocabSize, config.DModel);
        shared = embedding;
        encoder = new T5Stack(config, isDecoder: false, embedding);
        decoder = new T5Stack(config, isDecoder: true, embedding);
        _tied = config.TieWordEmbeddings;
        lm_head = _tied ? TiedHead(embedding) : nn.Linear(config.DModel, config.VocabSize, hasBias: false);
        RegisterComponents();
    }

    /// <summary>The config.</summary>
    public T5Config T5 { get; }

    /// <inheritdoc />
    public override bool IsEncoderDecoder => true;

    /// <inheritdoc />
    public override nn.Module<Tensor, Tensor> InputEmbeddings => shared;

    /// <summary>
    /// Prefixes enter the decoder's self-attention only (see the class remarks). LayerCount is the decoder's
    /// blocks (the layers of <see cref="ModelInputs.PastKeyValues"/>), EncoderLayerCount the encoder's (the
    /// reference's default <c>num_layers</c>, its <c>num_hidden_layers</c>); the head size is <c>d_kv</c>.
    /// </summary>
    public override PromptLayout PromptLayout =>
        new(T5.DecoderLayers, T5.NumHeads, T5.DKv, T5.DModel, IsEncoderDecoder: true, EncoderLayerCount: T5.NumLayers);

    /// <summary>
    /// Both stacks' <c>embed_tokens</c> share <c>shared.weight</c> whatever the config says (transformers 5 ties them
    /// always; <c>tie_word_embeddings</c> is about the head), and so does <c>lm_head</c> while tied.
    /// </summary>
    public override IReadOnlyList<(string Tied, string Source)> TiedWeights =>
    [
        ("encoder.embed_tokens.weight", "shared.weight"),
        ("decoder.embed_tokens.weight", "shared.weight"),
        .. _tied ? [("lm_head.weight", "shared.weight")] : Array.Empty<(string, string)>(),
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
        var encoderHidden = inputs.EncoderHiddenStates;
        if (encoderHidden is null)
        {
            encoderHidden = encoder.forward(new StackInputs { InputIds = inputs.InputIds, InputsEmbeds = inputs.InputsEmbeds, AttentionMask = inputs.AttentionMask }).MoveToOuterDisposeScope();
        }
        else
        {
            EncoderDecoder.CheckEncoderMask(inputs.AttentionMask, encoderHidden);
        }

        var decoderIds = inputs.DecoderInputIds;
        if (decoderIds is null && inputs.DecoderInputsEmbeds is null)
        {
            var labels = inputs.Labels ?? throw new ArgumentException("T5 needs decoder_input_ids, decoder_inputs_embeds or labels.");
            decoderIds = EncoderDecoder.ShiftTokensRight(labels, Config.PadTokenId ?? 0, Config.DecoderStartTokenId ?? Config.PadTokenId ?? 0);
        }
        var cache = inputs.PastKeyValues ?? (inputs.UseCache ? new KeyValueCache(decoder.LayerCount) : null);
        var crossCache = inputs.CrossAttentionCache ?? (inputs.UseCache ? new KeyValueCache(decoder.LayerCount) : null);
        var hidden = decoder.forward(new StackInputs
        {
            InputIds = decoderIds, InputsEmbeds = inputs.DecoderInputsEmbeds, AttentionMask = inputs.DecoderAttentionMask,
            EncoderHidden = encoderHidden, EncoderAttentionMask = inputs.AttentionMask, Cache = cache, CrossCache = crossCache,
        });

        if (T5.ScaleDecoderOutputs) hidden = hidden * Math.Pow(T5.DModel, -0.5);
        var logits = lm_head.call(hidden);
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
