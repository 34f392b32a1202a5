using Peft.Serving.Scheduling;

namespace Peft.Serving;

/// <summary>What <c>peft serve</c> (or an app's <see cref="ServingExtensions.AddServing"/>) serves and how.</summary>
public sealed record PeftServerOptions
{
    /// <summary>The base model's directory (config.json, weights, tokenizer files).</summary>
    public string ModelDirectory { get; init; } = "";

    /// <summary>The first adapter: name and directory. The model keeps it loaded for good (a PeftModel has at least one adapter).</summary>
    public (string Name, string Directory)? FirstAdapter { get; init; }

    /// <summary>Further adapters by name: loaded on first use, evicted least recently used first.</summary>
    public IReadOnlyDictionary<string, string> Adapters { get; init; } = new Dictionary<string, string>();

    /// <summary>A directory whose sub-directories holding adapter_config.json are adapters named after them; null for none.</summary>
    public string? AdaptersDirectory { get; init; }

    /// <summary>Adapters loaded at once at most.</summary>
    public int MaxResidentAdapters { get; init; } = 8;

    /// <summary>The id <c>/v1/models</c> gives the base model (requests may also say <c>__base__</c>); null: the model directory's name.</summary>
    public string? BaseModelId { get; init; }

    /// <summary>Batching and queue bounds.</summary>
    public SchedulerOptions Scheduler { get; init; } = new();

    /// <summary>Request size limits.</summary>
    public ServingLimits Limits { get; init; } = new();

    /// <summary>
    /// API keys and the adapters each may use (<c>"*"</c>: all). Empty: no key needed. With keys, a request
    /// without a known <c>Authorization: Bearer</c> key gets 401, and one naming an adapter its key lacks gets 403.
    /// </summary>
    public IReadOnlyDictionary<string, IReadOnlyList<string>> ApiKeys { get; init; } = new Dictionary<string, IReadOnlyList<string>>();

    /// <summary>A chat template family to use when tokenizer_config.json has none (or one not recognised); null: the model's own.</summary>
    public Chat.ChatTemplateFamily? ChatTemplate { get; init; }

    /// <summary>Request bodies larger than this are refused (413).</summary>
    public long MaxRequestBodyBytes { get; init; } = 1 << 20;
}
