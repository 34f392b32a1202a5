using System.ComponentModel;
using System.ComponentModel.DataAnnotations;
using Peft.Cli.Data;

namespace Peft.Cli.Hosting;

/// <summary>Options of <c>peft evaluate</c> (section <c>Peft:Evaluate</c>).</summary>
public sealed class EvaluateOptions : IQuantizeOptions
{    /// <summary>Quantize the base model on load: int8, nf4 or fp4 (see <see cref="QuantizeOptionChecks"/>).</summary>
    [Description(QuantizeOptionChecks.QuantizeHelp)]
    [AllowedValues("int8", "nf4", "fp4")]
    public string? Quantize { get; set; }

    /// <summary>4-bit only: double quantization.</summary>
    [Description(QuantizeOptionChecks.DoubleQuantHelp)]
    public bool DoubleQuant { get; set; }

    /// <summary>4-bit only: the compute dtype.</summary>
    [Description(QuantizeOptionChecks.ComputeDtypeHelp)]
    [AllowedValues("float32", "bfloat16", "float16")]
    public string? ComputeDtype { get; set; }


    /// <summary>A Hugging Face model directory (the base model).</summary>
    [Description("The base model directory (a sequence classifier with vocab.txt).")]
    public string? Model { get; set; }

    /// <summary>An adapter directory to apply; none evaluates the model alone.</summary>
    [Description("An adapter directory to apply (none: the model alone).")]
    public string? Adapter { get; set; }

    /// <summary>A JSONL or CSV file of text + label.</summary>
    [Description("A JSONL or CSV file with text and label.")]
    public string? Data { get; set; }

    /// <summary>Comma-separated label names in the classifier's order.</summary>
    [Description("Comma-separated label names in the classifier's order [default: the adapter's saved id2label, else the file's labels sorted]")]
    public string? Labels { get; set; }

    /// <summary>Examples per batch.</summary>
    [Description("Examples per batch.")]
    public int BatchSize { get; set; } = 32;

    /// <summary>Tokens per example after truncation.</summary>
    [Description("Tokens per example after truncation.")]
    public int MaxLength { get; set; } = 64;

    /// <summary>What to do with unreadable lines.</summary>
    [Description("What to do with an unreadable data line.")]
    public BadLinePolicy OnBadLine { get; set; } = BadLinePolicy.Fail;
}

/// <summary>Options of <c>peft predict</c> (section <c>Peft:Predict</c>).</summary>
public sealed class PredictOptions
{
    /// <summary>The base model directory.</summary>
    [Description("The base model directory [default: the adapter's base_model_name_or_path when it is a directory here]")]
    public string? Model { get; set; }

    /// <summary>A trained classifier adapter.</summary>
    [Description("A sequence-classification adapter directory (its label names come from its config.json id2label).")]
    public string? Adapter { get; set; }

    /// <summary>Texts to classify.</summary>
    [Description("A text to classify; repeat the option for several.")]
    public string[]? Text { get; set; }

    /// <summary>A file of texts: one per line (.txt) or the text field of JSONL/CSV.</summary>
    [Description("A file of texts: one per line (.txt), or the text field of a .jsonl/.csv file.")]
    public string? Data { get; set; }

    /// <summary>Tokens per text after truncation.</summary>
    [Description("Tokens per text after truncation.")]
    public int MaxLength { get; set; } = 64;
}

/// <summary>Options of <c>peft generate</c> (section <c>Peft:Generate</c>).</summary>
public sealed class GenerateOptions : IQuantizeOptions
{    /// <summary>Quantize the base model on load: int8, nf4 or fp4 (see <see cref="QuantizeOptionChecks"/>).</summary>
    [Description(QuantizeOptionChecks.QuantizeHelp)]
    [AllowedValues("int8", "nf4", "fp4")]
    public string? Quantize { get; set; }

    /// <summary>4-bit only: double quantization.</summary>
    [Description(QuantizeOptionChecks.DoubleQuantHelp)]
    public bool DoubleQuant { get; set; }

    /// <summary>4-bit only: the compute dtype.</summary>
    [Description(QuantizeOptionChecks.ComputeDtypeHelp)]
    [AllowedValues("float32", "bfloat16", "float16")]
    public string? ComputeDtype { get; set; }


    /// <summary>A causal-LM or seq2seq model directory.</summary>
    [Description("A causal-LM or seq2seq model directory.")]
    public string? Model { get; set; }

    /// <summary>An adapter directory to apply.</summary>
    [Description("An adapter directory to apply.")]
    public string? Adapter { get; set; }

    /// <summary>The prompt as comma- or space-separated token ids.</summary>
    [Description("The prompt as token ids, separated by spaces or commas (prints ids).")]
    public string? Prompt { get; set; }

    /// <summary>The prompt as text, tokenized with the model's vocab.json + merges.txt.</summary>
    [Description("The prompt as text, tokenized with the model's own tokenizer (tokenizer.json, or vocab.json + merges.txt, or vocab.txt); prints the prompt and its continuation.")]
    public string? Text { get; set; }

    /// <summary>Tokens to generate.</summary>
    [Description("Tokens to generate.")]
    public int MaxNewTokens { get; set; } = 20;
}

/// <summary>Options of <c>peft merge</c> (section <c>Peft:Merge</c>).</summary>
public sealed class MergeOptions : IQuantizeOptions
{    /// <summary>Quantize the base model on load: int8, nf4 or fp4 (see <see cref="QuantizeOptionChecks"/>).</summary>
    [Description(QuantizeOptionChecks.QuantizeHelp)]
    [AllowedValues("int8", "nf4", "fp4")]
    public string? Quantize { get; set; }

    /// <summary>4-bit only: double quantization.</summary>
    [Description(QuantizeOptionChecks.DoubleQuantHelp)]
    public bool DoubleQuant { get; set; }

    /// <summary>4-bit only: the compute dtype.</summary>
    [Description(QuantizeOptionChecks.ComputeDtypeHelp)]
    [AllowedValues("float32", "bfloat16", "float16")]
    public string? ComputeDtype { get; set; }


    /// <summary>The base model directory.</summary>
    [Description("The base model directory.")]
    public string? Model { get; set; }

    /// <summary>The adapter directory.</summary>
    [Description("The adapter directory (LoRA or IA3: methods whose update folds into the weights).")]
    public string? Adapter { get; set; }

    /// <summary>Where the merged model directory goes.</summary>
    [Description("Where the merged model directory goes.")]
    public string? Output { get; set; }

    /// <summary>The task the adapter was trained for.</summary>
    [Description("The task the adapter was trained for (CAUSAL_LM, SEQ_CLS, ...) [default: the adapter's task_type]")]
    public string? Task { get; set; }
}

/// <summary>Options of <c>peft inspect</c> (section <c>Peft:Inspect</c>).</summary>
public sealed class InspectOptions : IQuantizeOptions
{    /// <summary>Quantize the base model on load: int8, nf4 or fp4 (see <see cref="QuantizeOptionChecks"/>).</summary>
    [Description(QuantizeOptionChecks.QuantizeHelp)]
    [AllowedValues("int8", "nf4", "fp4")]
    public string? Quantize { get; set; }

    /// <summary>4-bit only: double quantization.</summary>
    [Description(QuantizeOptionChecks.DoubleQuantHelp)]
    public bool DoubleQuant { get; set; }

    /// <summary>4-bit only: the compute dtype.</summary>
    [Description(QuantizeOptionChecks.ComputeDtypeHelp)]
    [AllowedValues("float32", "bfloat16", "float16")]
    public string? ComputeDtype { get; set; }


    /// <summary>The adapter directory.</summary>
    [Description("The adapter directory.")]
    public string? Adapter { get; set; }

    /// <summary>A base model directory: with it, the trainable-parameter line is computed.</summary>
    [Description("A base model directory: with it, the trainable-parameter line is printed too.")]
    public string? Model { get; set; }

    /// <summary>The task (default: the adapter's task_type).</summary>
    [Description("The task (CAUSAL_LM, SEQ_CLS, ...) [default: the adapter's task_type]")]
    public string? Task { get; set; }
}
