using Peft.Cli.Data;

namespace Peft.Cli.Hosting;

/// <summary>Options of <c>peft finetune</c> (section <c>Peft:Finetune</c>).</summary>
public sealed class FinetuneOptions
{
    /// <summary>A Hugging Face model directory; empty for the embedded all-MiniLM-L6-v2.</summary>
    public string? Model { get; set; }

    /// <summary>"classification" (text + label) or "causal-lm" (prompt + completion, a model with vocab.json + merges.txt).</summary>
    public string Task { get; set; } = "classification";

    /// <summary>True for causal-LM fine-tuning.</summary>
    public bool IsCausalLM => Task == "causal-lm";

    /// <summary>A JSONL or CSV file of text + label (or prompt + completion); empty for the fortunes corpus.</summary>
    public string? Data { get; set; }

    /// <summary>Comma-separated: lora, probe (frozen encoder + head), full.</summary>
    public string Methods { get; set; } = "lora,probe,full";

    /// <summary>LoRA rank.</summary>
    public int Rank { get; set; } = 8;

    /// <summary>LoRA alpha.</summary>
    public double Alpha { get; set; } = 16;

    /// <summary>LoRA dropout.</summary>
    public double Dropout { get; set; } = 0.05;

    /// <summary>Comma-separated module names (empty: query, key, value, dense layers of the encoder).</summary>
    public string? TargetModules { get; set; }

    /// <summary>Passes over the training set.</summary>
    public int Epochs { get; set; } = 3;

    /// <summary>Examples per batch.</summary>
    public int BatchSize { get; set; } = 32;

    /// <summary>Peak learning rate for LoRA.</summary>
    public double LearningRate { get; set; } = 1e-3;

    /// <summary>Peak learning rate for the linear probe.</summary>
    public double ProbeLearningRate { get; set; } = 1e-2;

    /// <summary>Peak learning rate for full fine-tuning.</summary>
    public double FullLearningRate { get; set; } = 5e-5;

    /// <summary>Warm-up fraction of the steps.</summary>
    public double WarmupRatio { get; set; } = 0.1;

    /// <summary>Batches per optimizer step.</summary>
    public int GradientAccumulation { get; set; } = 1;

    /// <summary>Gradient clipping norm (0: off).</summary>
    public double MaxGradNorm { get; set; } = 1.0;

    /// <summary>Tokens per example after truncation.</summary>
    public int MaxLength { get; set; } = 64;

    /// <summary>Share of a --data file held out for testing.</summary>
    public double TestFraction { get; set; } = 0.2;

    /// <summary>Seed of the split, the shuffling and the initialisation.</summary>
    public int Seed { get; set; } = 42;

    /// <summary>Where adapters, checkpoints, the chart and the table go.</summary>
    public string Output { get; set; } = "peft-output";

    /// <summary>A checkpoint directory to continue LoRA training from.</summary>
    public string? Resume { get; set; }

    /// <summary>What to do with unreadable data lines: fail or skip.</summary>
    public BadLinePolicy OnBadLine { get; set; } = BadLinePolicy.Fail;

    /// <summary>Fortunes categories (comma-separated) for the default data.</summary>
    public string? Categories { get; set; }

    /// <summary>At most this many examples per label (0: all), to bound the run time.</summary>
    public int MaxExamplesPerLabel { get; set; } = 400;

    /// <summary>The methods to run, parsed.</summary>
    public IReadOnlyList<string> MethodList => Methods.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);

    /// <summary>Errors in the values, empty when they are fine.</summary>
    public IEnumerable<string> Problems()
    {
        foreach (var method in MethodList)
        {
            if (method is not ("lora" or "probe" or "full")) yield return $"--methods: unknown method '{method}' (use lora, probe, full)";
        }
        if (MethodList.Count == 0) yield return "--methods: name at least one of lora, probe, full";
        if (Task is not ("classification" or "causal-lm")) yield return $"--task: unknown task '{Task}' (use classification or causal-lm)";
        if (IsCausalLM && MethodList.Contains("probe")) yield return "--methods: a linear probe needs a classification head; with --task causal-lm use lora and/or full";
        if (IsCausalLM && string.IsNullOrEmpty(Data)) yield return "--task causal-lm needs --data with prompt and completion fields";
        if (IsCausalLM && string.IsNullOrEmpty(Model)) yield return "--task causal-lm needs --model (a causal LM directory with vocab.json and merges.txt)";
        if (Rank <= 0) yield return $"--rank must be positive, got {Rank}";
        if (Epochs <= 0) yield return $"--epochs must be positive, got {Epochs}";
        if (BatchSize <= 0) yield return $"--batch-size must be positive, got {BatchSize}";
        if (!(LearningRate > 0)) yield return $"--learning-rate must be positive, got {LearningRate}";
        if (MaxLength < 8) yield return $"--max-length must be at least 8, got {MaxLength}";
        if (TestFraction is <= 0 or >= 1) yield return $"--test-fraction must be in (0, 1), got {TestFraction}";
        if (Dropout is < 0 or >= 1) yield return $"--dropout must be in [0, 1), got {Dropout}";
        if (Model is { Length: > 0 } model && !Directory.Exists(model)) yield return $"--model: directory '{model}' not found";
        if (Data is { Length: > 0 } data && !File.Exists(data)) yield return $"--data: file '{data}' not found";
    }
}
