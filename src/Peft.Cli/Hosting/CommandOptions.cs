using Peft.Cli.Data;

namespace Peft.Cli.Hosting;

/// <summary>Options of <c>peft evaluate</c> (section <c>Peft:Evaluate</c>).</summary>
public sealed class EvaluateOptions
{
    /// <summary>A Hugging Face model directory (the base model).</summary>
    public string? Model { get; set; }

    /// <summary>An adapter directory to apply; none evaluates the model alone.</summary>
    public string? Adapter { get; set; }

    /// <summary>A JSONL or CSV file of text + label.</summary>
    public string? Data { get; set; }

    /// <summary>Comma-separated label names in the classifier's order (default: sorted labels of the file).</summary>
    public string? Labels { get; set; }

    /// <summary>Examples per batch.</summary>
    public int BatchSize { get; set; } = 32;

    /// <summary>Tokens per example after truncation.</summary>
    public int MaxLength { get; set; } = 64;

    /// <summary>What to do with unreadable lines.</summary>
    public BadLinePolicy OnBadLine { get; set; } = BadLinePolicy.Fail;
}

/// <summary>Options of <c>peft generate</c> (section <c>Peft:Generate</c>).</summary>
public sealed class GenerateOptions
{
    /// <summary>A causal-LM model directory.</summary>
    public string? Model { get; set; }

    /// <summary>An adapter directory to apply.</summary>
    public string? Adapter { get; set; }

    /// <summary>The prompt as comma- or space-separated token ids.</summary>
    public string? Prompt { get; set; }

    /// <summary>Tokens to generate.</summary>
    public int MaxNewTokens { get; set; } = 20;
}

/// <summary>Options of <c>peft merge</c> (section <c>Peft:Merge</c>).</summary>
public sealed class MergeOptions
{
    /// <summary>The base model directory.</summary>
    public string? Model { get; set; }

    /// <summary>The adapter directory.</summary>
    public string? Adapter { get; set; }

    /// <summary>Where the merged model directory goes.</summary>
    public string? Output { get; set; }

    /// <summary>The task the adapter was trained for (default: its adapter_config.json task_type).</summary>
    public string? Task { get; set; }
}

/// <summary>Options of <c>peft inspect</c> (section <c>Peft:Inspect</c>).</summary>
public sealed class InspectOptions
{
    /// <summary>The adapter directory.</summary>
    public string? Adapter { get; set; }

    /// <summary>A base model directory: with it, the trainable-parameter line is computed.</summary>
    public string? Model { get; set; }

    /// <summary>The task (default: the adapter's task_type).</summary>
    public string? Task { get; set; }
}
