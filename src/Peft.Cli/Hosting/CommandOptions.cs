using System.ComponentModel;
using System.ComponentModel.DataAnnotations;
using Peft.Cli.Data;

namespace Peft.Cli.Hosting;

/// <summary>Options of <c>peft evaluate</c> (section <c>Peft:Evaluate</c>).</summary>
public sealed class EvaluateOptions : ModelLoadingOptions
{
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
public sealed class GenerateOptions : ModelLoadingOptions
{
    /// <summary>A causal-LM or seq2seq model directory.</summary>
    [Description("A causal-LM or seq2seq model directory.")]
    public string? Model { get; set; }

    /// <summary>An adapter directory to apply.</summary>
    [Description("An adapter directory to apply.")]
    public string? Adapter { get; set; }

    /// <summary>The prompt as comma- or space-separated token ids.</summary>
    [Description("The prompt as token ids, separated by spaces or commas (prints ids).")]
    public string? Prompt { get; set; }

    /// <summary>The prompt as text, tokenized with the model's own tokenizer.</summary>
    [Description("The prompt as text, tokenized with the model's own tokenizer (tokenizer.json, or vocab.json + merges.txt, or vocab.txt); prints the prompt and its continuation.")]
    public string? Text { get; set; }

    /// <summary>Tokens to generate; null: generation_config.json's max_new_tokens, else 20.</summary>
    [Description("Tokens to generate. [default: generation_config.json's max_new_tokens, else 20]")]
    public int? MaxNewTokens { get; set; }

    /// <summary>Sample instead of greedy decoding (do_sample); null: generation_config.json's, else false.</summary>
    [Description("Sample from the distribution (warped by --temperature, --top-k, --top-p) instead of greedy decoding. [default: generation_config.json's do_sample, else false]")]
    public bool? DoSample { get; set; }

    /// <summary>Sampling temperature; null: generation_config.json's, else 1.</summary>
    [Description("With --do-sample: logits are divided by this (positive). [default: generation_config.json's temperature, else 1]")]
    public double? Temperature { get; set; }

    /// <summary>Top-k filter; null: generation_config.json's, else 50.</summary>
    [Description("With --do-sample: keep the k most likely tokens (0 keeps all). [default: generation_config.json's top_k, else 50]")]
    public int? TopK { get; set; }

    /// <summary>Nucleus filter; null: generation_config.json's, else 1.</summary>
    [Description("With --do-sample: keep the most likely tokens whose probability reaches p, in (0, 1]. [default: generation_config.json's top_p, else 1]")]
    public double? TopP { get; set; }

    /// <summary>Seed of the sampling generator.</summary>
    [Description("With --do-sample: the seed, for reproducible samples [default: unseeded]")]
    public long? Seed { get; set; }

    /// <summary>Stop strings.</summary>
    [Description("With --text: stop once the continuation contains this string; repeat the option for several.")]
    public string[]? Stop { get; set; }
}

/// <summary>Options of <c>peft merge</c> (section <c>Peft:Merge</c>).</summary>
public sealed class MergeOptions : ModelLoadingOptions
{
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
public sealed class InspectOptions : ModelLoadingOptions
{
    /// <summary>The adapter directory.</summary>
    [Description("The adapter directory.")]
    public string? Adapter { get; set; }

    /// <summary>A base model directory: with an adapter, the trainable-parameter line is computed; alone, the base model is inspected.</summary>
    [Description("A base model directory: with --adapter, the trainable-parameter line is printed too; alone, the base model's architecture, parameter count, dtype, device, load time and peak memory.")]
    public string? Model { get; set; }

    /// <summary>The task (default: the adapter's task_type, or for a base model the task of config.json's architectures).</summary>
    [Description("The task (CAUSAL_LM, SEQ_CLS, ...) [default: the adapter's task_type; for a base model alone, config.json's architectures]")]
    public string? Task { get; set; }
}

/// <summary>Options of <c>peft serve</c> (section <c>Peft:Serve</c>).</summary>
public sealed class ServeOptions
{
    /// <summary>The base model directory.</summary>
    [Description("The base model directory; default: the default job's all-MiniLM-L6-v2.")]
    public string? Model { get; set; }

    /// <summary>Adapters as name=DIR (repeatable); the first stays loaded.</summary>
    [Description("An adapter as name=DIR (repeatable; the first stays loaded, the others load on first use); default: default=peft-output/lora-adapter.")]
    public string[]? Adapter { get; set; }

    /// <summary>A directory whose sub-directories are adapters named after them.</summary>
    [Description("A directory whose sub-directories with adapter_config.json are adapters, named after them.")]
    public string? AdaptersDir { get; set; }

    /// <summary>The address to listen on.</summary>
    [Description("The address to listen on (http://host:port).")]
    public string Urls { get; set; } = "http://127.0.0.1:8000";

    /// <summary>Rows per decoding batch.</summary>
    [Description("Requests decoded together at most (of any adapters).")]
    public int MaxBatchSize { get; set; } = 8;

    /// <summary>Waiting requests at most.</summary>
    [Description("Requests waiting at most; more get 429.")]
    public int MaxQueue { get; set; } = 64;

    /// <summary>Adapters loaded at once.</summary>
    [Description("Adapters loaded at once at most (least recently used unloaded first).")]
    public int MaxResidentAdapters { get; set; } = 8;

    /// <summary>Prompt tokens at most.</summary>
    [Description("Prompt tokens per request at most (classify: tokens per text).")]
    public int MaxPromptTokens { get; set; } = 2048;

    /// <summary>New tokens a request may ask for.</summary>
    [Description("New tokens a request may ask for at most.")]
    public int MaxNewTokens { get; set; } = 512;

    /// <summary>API keys as KEY or KEY=adapter,adapter.</summary>
    [Description("An API key, as KEY (all adapters) or KEY=name,name (repeatable); with keys, requests need Authorization: Bearer KEY.")]
    public string[]? ApiKey { get; set; }

    /// <summary>A chat template family when the model's own is missing or not recognised.</summary>
    [Description("A chat template family when tokenizer_config.json has none or an unrecognised one: chatml, llama3, llama2, zephyr, gemma.")]
    public string? ChatTemplate { get; set; }
}
