using System.Text.Json;
using System.Text.Json.Serialization;

namespace Peft;

/// <summary>
/// The task a PEFT model is configured for, spelled as the reference spells it in
/// <c>adapter_config.json</c> (<c>"task_type": "CAUSAL_LM"</c>).
/// </summary>
[JsonConverter(typeof(TaskTypeJsonConverter))]
public readonly record struct TaskType(string Name)
{
    /// <summary>Next-token prediction with a language-model head.</summary>
    public static readonly TaskType CausalLM = new("CAUSAL_LM");
    /// <summary>Encoder-decoder generation.</summary>
    public static readonly TaskType Seq2SeqLM = new("SEQ_2_SEQ_LM");
    /// <summary>One label per sequence.</summary>
    public static readonly TaskType SequenceClassification = new("SEQ_CLS");
    /// <summary>One label per token.</summary>
    public static readonly TaskType TokenClassification = new("TOKEN_CLS");
    /// <summary>Hidden states out, no head.</summary>
    public static readonly TaskType FeatureExtraction = new("FEATURE_EXTRACTION");
    /// <summary>Extractive question answering.</summary>
    public static readonly TaskType QuestionAnswering = new("QUESTION_ANS");

    /// <summary>
    /// One label per image. The reference has no such task_type (its vision adapters are saved with
    /// <c>task_type: null</c>): this value selects the head a vision architecture builds.
    /// </summary>
    public static readonly TaskType ImageClassification = new("IMAGE_CLASSIFICATION");
    /// <summary>One label per pixel (as <see cref="ImageClassification"/>, not a reference task_type).</summary>
    public static readonly TaskType SemanticSegmentation = new("SEMANTIC_SEGMENTATION");

    /// <summary>
    /// The head modules the reference trains in full for this task (its PeftModelForSequenceClassification
    /// and kin add them to modules_to_save): a model has one of them, so each may match nothing.
    /// </summary>
    public IReadOnlyList<string> HeadModulesToSave =>
        this == SequenceClassification || this == TokenClassification ? ["classifier", "score"]
        : this == QuestionAnswering ? ["qa_outputs"]
        : [];

    /// <inheritdoc />
    public override string ToString() => Name;
}

internal sealed class TaskTypeJsonConverter : JsonConverter<TaskType>
{
    public override TaskType Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) =>
        new(reader.GetString() ?? throw new JsonException("task_type must be a string"));

    public override void Write(Utf8JsonWriter writer, TaskType value, JsonSerializerOptions options) =>
        writer.WriteStringValue(value.Name);
}
