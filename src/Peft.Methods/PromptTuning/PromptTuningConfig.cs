using System.Text.Json;
using System.Text.Json.Serialization;
using Peft.PromptLearning;

namespace Peft.Methods.PromptTuning;

/// <summary>Prompt tuning's adapter_config.json (the reference's <c>PromptTuningConfig</c>).</summary>
public sealed record PromptTuningConfig : PromptLearningConfig
{
    /// <summary>Initialisation from random vectors.</summary>
    public const string RandomInit = "RANDOM";
    /// <summary>Initialisation from the embeddings of randomly drawn vocabulary tokens.</summary>
    public const string SampleVocabInit = "SAMPLE_VOCAB";
    /// <summary>Initialisation from the embeddings of a text's tokens.</summary>
    public const string TextInit = "TEXT";

    /// <inheritdoc />
    [JsonPropertyName("peft_type")] // repeated: without it the override is written a second time as "PeftType"
    public override PeftType PeftType => PeftType.PromptTuning;

    /// <summary><c>"RANDOM"</c>, <c>"SAMPLE_VOCAB"</c> or <c>"TEXT"</c>.</summary>
    [JsonPropertyName("prompt_tuning_init")]
    public string PromptTuningInit { get; init; } = RandomInit;

    /// <summary>The text whose token embeddings start the prompt (<c>TEXT</c> init).</summary>
    [JsonPropertyName("prompt_tuning_init_text")]
    public string? PromptTuningInitText { get; init; }

    /// <summary>The tokenizer the reference loads for <c>TEXT</c> init; informational here (see <see cref="Tokenizer"/>).</summary>
    [JsonPropertyName("tokenizer_name_or_path")]
    public string? TokenizerNameOrPath { get; init; }

    /// <summary>Arguments the reference passes to its tokenizer; informational here.</summary>
    [JsonPropertyName("tokenizer_kwargs")]
    public JsonElement? TokenizerKwargs { get; init; }

    /// <summary>
    /// The token ids of <see cref="PromptTuningInitText"/>, as the model's tokenizer gives them
    /// (Hugging Face's <c>tokenizer(text)["input_ids"]</c>, special tokens included). Not saved.
    /// </summary>
    [JsonIgnore]
    public IReadOnlyList<long>? InitTokenIds { get; init; }

    /// <summary>Tokenizes <see cref="PromptTuningInitText"/> when <see cref="InitTokenIds"/> is not given. Not saved.</summary>
    [JsonIgnore]
    public IPromptTokenizer? Tokenizer { get; init; }

    /// <inheritdoc />
    public override void Validate()
    {
        base.Validate();
        if (PromptTuningInit is not (RandomInit or SampleVocabInit or TextInit))
        {
            throw new PeftConfigException($"`prompt_tuning_init` = \"{PromptTuningInit}\" is not one of \"{RandomInit}\", \"{SampleVocabInit}\", \"{TextInit}\".");
        }
        if (PromptTuningInit == TextInit && PromptTuningInitText is null)
        {
            throw new PeftConfigException($"When `prompt_tuning_init` = \"{TextInit}\", `prompt_tuning_init_text` can't be null.");
        }
        if (TokenizerKwargs is { ValueKind: not JsonValueKind.Null } && PromptTuningInit != TextInit)
        {
            throw new PeftConfigException($"`tokenizer_kwargs` is only valid with `prompt_tuning_init` = \"{TextInit}\".");
        }
    }

    /// <summary>The ids the <c>TEXT</c> init embeds: <see cref="InitTokenIds"/>, else the text through <see cref="Tokenizer"/>.</summary>
    /// <exception cref="PeftConfigException">Neither is given, or the text yields no tokens.</exception>
    public IReadOnlyList<long> TextTokenIds()
    {
        var ids = InitTokenIds ?? Tokenizer?.Encode(PromptTuningInitText ?? "")
            ?? throw new PeftConfigException(
                $"`prompt_tuning_init` = \"{TextInit}\" needs the token ids of `prompt_tuning_init_text`: set {nameof(InitTokenIds)} or {nameof(Tokenizer)} on the config (this library does not load tokenizer_name_or_path).");
        if (ids.Count == 0) throw new PeftConfigException("`prompt_tuning_init_text` gives no tokens to initialise the prompt with.");
        return ids;
    }
}

/// <summary>Turns text into token ids, for initialising prompts from a text.</summary>
public interface IPromptTokenizer
{
    /// <summary>The ids of <paramref name="text"/>, special tokens included, as Hugging Face's <c>tokenizer(text)["input_ids"]</c>.</summary>
    IReadOnlyList<long> Encode(string text);
}
