using System.Text.Json.Serialization;
using Peft.Modeling;

namespace Peft.PromptLearning;

/// <summary>How a prompt-learning method feeds its virtual tokens to the model.</summary>
public enum PromptKind
{
    /// <summary>Learned embeddings are put in front of the token embeddings (prompt tuning, P-tuning).</summary>
    VirtualTokens,
    /// <summary>Learned keys and values are put in front of every attention layer's cache (prefix tuning).</summary>
    Prefix,
}

/// <summary>
/// Fields every prompt-learning config shares (the reference's <c>PromptLearningConfig</c>). The
/// model-dependent sizes may be left out: <see cref="ForModel"/> fills them from the architecture's
/// <see cref="PromptLayout"/>, as the reference's <c>_prepare_prompt_learning_config</c> does from config.json.
/// </summary>
public abstract record PromptLearningConfig : PeftConfig
{
    /// <summary>Virtual tokens per transformer submodule.</summary>
    [JsonPropertyName("num_virtual_tokens")]
    public int? NumVirtualTokens { get; init; }

    /// <summary>Width of one virtual token: the token embedding size (prefix tuning: key/value heads × head size).</summary>
    [JsonPropertyName("token_dim")]
    public int? TokenDim { get; init; }

    /// <summary>1, or 2 for encoder-decoder models (virtual tokens for encoder and decoder).</summary>
    [JsonPropertyName("num_transformer_submodules")]
    public int? NumTransformerSubmodules { get; init; }

    /// <summary>Attention heads (prefix tuning: key/value heads) per layer.</summary>
    [JsonPropertyName("num_attention_heads")]
    public int? NumAttentionHeads { get; init; }

    /// <summary>Transformer layers (prefix tuning: layers that receive prefixes).</summary>
    [JsonPropertyName("num_layers")]
    public int? NumLayers { get; init; }

    /// <summary>Modules trained in full and saved with the adapter (classification heads).</summary>
    [JsonPropertyName("modules_to_save")]
    public IReadOnlyList<string>? ModulesToSave { get; init; }

    /// <summary>How this method feeds the model.</summary>
    [JsonIgnore]
    public virtual PromptKind Kind => PromptKind.VirtualTokens;

    /// <summary>Rows of the prompt encoder's embedding: virtual tokens × submodules (prefix tuning: virtual tokens).</summary>
    [JsonIgnore]
    public int TotalVirtualTokens => Kind == PromptKind.Prefix
        ? NumVirtualTokens ?? 0
        : (NumVirtualTokens ?? 0) * (NumTransformerSubmodules ?? 1);

    /// <inheritdoc />
    protected override IEnumerable<ConfigSize> DeclaredSizes() =>
        NumVirtualTokens is { } tokens ? [new ConfigSize("num_virtual_tokens", tokens, SizeBound.TensorDimension)] : [];

    /// <inheritdoc />
    public override void Validate()
    {
        base.Validate();
        if (NumVirtualTokens is not > 0)
        {
            throw new PeftConfigException($"`num_virtual_tokens` must be a positive integer, got {Show(NumVirtualTokens)}.");
        }
        Positive(TokenDim, "token_dim");
        Positive(NumAttentionHeads, "num_attention_heads");
        Positive(NumLayers, "num_layers");
        if (NumTransformerSubmodules is { } submodules and not (1 or 2))
        {
            throw new PeftConfigException($"`num_transformer_submodules` must be 1 or 2 (encoder and decoder), got {submodules}.");
        }
    }

    /// <summary>
    /// This config with every size left out filled from <paramref name="layout"/>, for <paramref name="task"/>.
    /// Derived configs extend it for their own defaults (encoder_hidden_size).
    /// </summary>
    public virtual PromptLearningConfig ForModel(PromptLayout layout, TaskType task)
    {
        var prefix = Kind == PromptKind.Prefix;
        return this with
        {
            TaskType = TaskType ?? task,
            NumLayers = NumLayers ?? (prefix || !layout.IsEncoderDecoder || layout.EncoderLayerCount == 0 ? layout.LayerCount : layout.EncoderLayerCount),
            // Prefixes are keys and values: for grouped-query attention they have the key/value heads' width.
            TokenDim = TokenDim ?? (prefix ? layout.AttentionHeads * layout.HeadDim : layout.HiddenSize),
            NumAttentionHeads = NumAttentionHeads ?? layout.AttentionHeads,
            NumTransformerSubmodules = NumTransformerSubmodules ?? (task == Peft.TaskType.Seq2SeqLM ? 2 : 1),
        };
    }

    /// <summary>
    /// Checks that this config (after <see cref="ForModel"/>) fits the model; throws
    /// <see cref="PeftConfigException"/> naming the field and the model's value.
    /// </summary>
    public virtual void ValidateFor(PromptLayout layout, TaskType task, string modelType)
    {
        var submodules = NumTransformerSubmodules ?? 1;
        if (submodules == 2 && task != Peft.TaskType.Seq2SeqLM)
        {
            throw new PeftConfigException(
                $"`num_transformer_submodules` = 2 is for encoder-decoder models (task_type SEQ_2_SEQ_LM); task_type is {task}.");
        }
        if (task == Peft.TaskType.Seq2SeqLM && !layout.IsEncoderDecoder)
        {
            throw new PeftConfigException($"task_type SEQ_2_SEQ_LM needs an encoder-decoder model; {modelType} is decoder-only or encoder-only.");
        }
        if (Kind == PromptKind.VirtualTokens)
        {
            if (TokenDim != layout.HiddenSize)
            {
                throw new PeftConfigException(
                    $"`token_dim` = {TokenDim} does not fit the {modelType} model: virtual tokens are put next to its token embeddings, which have {layout.HiddenSize} dimensions.");
            }
            return;
        }
        if (NumLayers != layout.LayerCount)
        {
            throw new PeftConfigException(
                $"`num_layers` = {NumLayers} does not fit the {modelType} model: it has {layout.LayerCount} {(layout.IsEncoderDecoder ? "decoder " : "")}layers to give prefixes to.");
        }
        if (NumAttentionHeads != layout.AttentionHeads)
        {
            throw new PeftConfigException(
                $"`num_attention_heads` = {NumAttentionHeads} does not fit the {modelType} model: its attention layers have {layout.AttentionHeads} key/value heads.");
        }
        if (TokenDim % NumAttentionHeads != 0 || TokenDim / NumAttentionHeads != layout.HeadDim)
        {
            throw new PeftConfigException(
                $"`token_dim` = {TokenDim} with `num_attention_heads` = {NumAttentionHeads} does not fit the {modelType} model: prefixes need token_dim = heads × head size = {layout.AttentionHeads} × {layout.HeadDim} = {layout.AttentionHeads * layout.HeadDim}.");
        }
    }

    private static void Positive(int? value, string name)
    {
        if (value is <= 0) throw new PeftConfigException($"`{name}` must be a positive integer, got {value}.");
    }

    private static string Show(int? value) => value?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "null";
}
