using System.Runtime.CompilerServices;
using Peft.Serving.Chat;
using Peft.Serving.Scheduling;
using Peft.Tokenizers;

namespace Peft.Serving;

/// <summary>What a request may ask for, at most.</summary>
public sealed record ServingLimits
{
    /// <summary>Prompt tokens at most (after the chat template).</summary>
    public int MaxPromptTokens { get; init; } = 2048;

    /// <summary>New tokens a request may ask for at most.</summary>
    public int MaxNewTokens { get; init; } = 512;

    /// <summary>New tokens when a request names none.</summary>
    public int DefaultMaxNewTokens { get; init; } = 64;

    /// <summary>Stop strings per request at most (OpenAI allows 4).</summary>
    public int MaxStopStrings { get; init; } = 4;
}

/// <summary>
/// How one request samples (OpenAI's fields). Temperature 0 is greedy. A field left null takes the model's
/// generation_config.json value when the file has one (<see cref="ModelSamplingDefaults"/>), else OpenAI's default
/// (temperature 1, top_p 1, no top-k).
/// </summary>
/// <param name="MaxTokens">New tokens at most; null takes generation_config.json's max_new_tokens, else <see cref="ServingLimits.DefaultMaxNewTokens"/> (within <see cref="ServingLimits.MaxNewTokens"/>).</param>
/// <param name="Temperature">0 for greedy, else the sampling temperature.</param>
/// <param name="TopP">Nucleus mass, (0, 1].</param>
/// <param name="TopK">Keep the k most likely tokens (0: all).</param>
/// <param name="Seed">Seed of this request's sampling.</param>
/// <param name="Stop">Stop strings (not part of the returned text).</param>
public sealed record Sampling(int? MaxTokens = null, double? Temperature = null, double? TopP = null, int? TopK = null, long? Seed = null, IReadOnlyList<string>? Stop = null);

/// <summary>A request was refused for its size or its values (HTTP 400); <see cref="Param"/> names the field.</summary>
/// <param name="message">What is wrong.</param>
/// <param name="param">The request field.</param>
public sealed class InvalidRequestException(string message, string? param = null) : Exception(message)
{
    /// <summary>The request field at fault.</summary>
    public string? Param { get; } = param;
}

/// <summary>
/// Text in, text out over the <see cref="GenerationScheduler"/>: the model's tokenizer, its chat template, and the
/// limits. The HTTP endpoints and <see cref="PeftChatClient"/> both go through it.
/// </summary>
/// <param name="scheduler">Runs the requests.</param>
/// <param name="tokenizer">The model's tokenizer.</param>
/// <param name="chatTemplate">The model's chat template, or null (chat is then refused).</param>
/// <param name="limits">Request limits.</param>
/// <param name="modelDefaults">The model's generation_config.json sampling defaults; null: OpenAI's.</param>
public sealed class TextGeneration(GenerationScheduler scheduler, PretrainedTokenizer tokenizer, ChatTemplate? chatTemplate, ServingLimits limits,
    ModelSamplingDefaults? modelDefaults = null)
{
    private readonly ModelSamplingDefaults _defaults = modelDefaults ?? ModelSamplingDefaults.None;

    /// <summary>The scheduler.</summary>
    public GenerationScheduler Scheduler => scheduler;

    /// <summary>The tokenizer.</summary>
    public PretrainedTokenizer Tokenizer => tokenizer;

    /// <summary>The chat template, or null.</summary>
    public ChatTemplate? ChatTemplate => chatTemplate;

    /// <summary>The limits.</summary>
    public ServingLimits Limits => limits;

    /// <summary>The chat prompt of <paramref name="turns"/>.</summary>
    /// <exception cref="InvalidRequestException">The model has no chat template, or a role is not supported.</exception>
    public string RenderChat(IReadOnlyList<ChatTurn> turns)
    {
        if (chatTemplate is null) throw new InvalidRequestException("This model has no chat_template in tokenizer_config.json; use /v1/completions with a prompt.", "messages");
        if (turns.Count == 0) throw new InvalidRequestException("messages is empty.", "messages");
        try
        {
            return chatTemplate.Render(turns);
        }
        catch (ArgumentException e)
        {
            throw new InvalidRequestException(e.Message, "messages");
        }
    }

    /// <summary>Tokenizes <paramref name="prompt"/>, checks the limits and queues it.</summary>
    /// <param name="adapter">The adapter (or <see cref="PeftModel.BaseModelName"/>).</param>
    /// <param name="prompt">The prompt text.</param>
    /// <param name="sampling">The request's sampling.</param>
    /// <param name="addSpecialTokens">Frame the prompt with the tokenizer's special tokens (false for chat prompts, whose template writes them).</param>
    /// <param name="cancellationToken">The request's cancellation.</param>
    /// <exception cref="InvalidRequestException">Too long, too many tokens asked, bad values.</exception>
    public async Task<TextRun> StartAsync(string adapter, string prompt, Sampling sampling, bool addSpecialTokens = true, CancellationToken cancellationToken = default)
    {
        var ids = tokenizer.Encode(prompt, addSpecialTokens);
        if (ids.Count == 0) throw new InvalidRequestException("The prompt is empty.", "prompt");
        if (ids.Count > limits.MaxPromptTokens) throw new InvalidRequestException($"The prompt has {ids.Count} tokens; this server takes at most {limits.MaxPromptTokens}.", "prompt");
        var options = Options(sampling);
        var job = await scheduler.SubmitAsync(new GenerationRequest(adapter, ids, options), cancellationToken).ConfigureAwait(false);
        return new TextRun(job, tokenizer, sampling.Stop ?? []);
    }

    private GenerationOptions Options(Sampling sampling)
    {
        var maxTokens = sampling.MaxTokens ?? Math.Min(_defaults.MaxNewTokens ?? limits.DefaultMaxNewTokens, limits.MaxNewTokens);
        if (maxTokens < 1 || maxTokens > limits.MaxNewTokens) throw new InvalidRequestException($"max_tokens must be 1 to {limits.MaxNewTokens}, got {maxTokens}.", "max_tokens");
        var temperature = sampling.Temperature ?? _defaults.Temperature ?? 1.0;
        if (temperature is < 0 or > 2) throw new InvalidRequestException($"temperature must be 0 to 2, got {temperature}.", "temperature");
        var topP = sampling.TopP ?? _defaults.TopP ?? 1.0;
        if (topP is <= 0 or > 1) throw new InvalidRequestException($"top_p must be in (0, 1], got {topP}.", "top_p");
        var topK = sampling.TopK ?? _defaults.TopK ?? 0;
        if (topK < 0) throw new InvalidRequestException($"top_k must be ≥ 0, got {topK}.", "top_k");
        var stop = sampling.Stop ?? [];
        if (stop.Count > limits.MaxStopStrings) throw new InvalidRequestException($"At most {limits.MaxStopStrings} stop strings.", "stop");
        if (stop.Any(string.IsNullOrEmpty)) throw new InvalidRequestException("A stop string is empty.", "stop");
        return new GenerationOptions
        {
            MaxNewTokens = maxTokens,
            DoSample = temperature > 0,
            Temperature = temperature > 0 ? temperature : 1.0,
            TopP = topP,
            TopK = topK,
            EosTokenIds = _defaults.EosTokenIds,
            Seed = sampling.Seed,
            StopStrings = stop,
            Decode = stop.Count > 0 ? ids => tokenizer.Decode(ids) : null,
        };
    }
}

/// <summary>One running request: its text as it is decoded, then its outcome.</summary>
public sealed class TextRun
{
    private readonly GenerationJob _job;
    private readonly PretrainedTokenizer _tokenizer;
    private readonly IReadOnlyList<string> _stop;

    internal TextRun(GenerationJob job, PretrainedTokenizer tokenizer, IReadOnlyList<string> stop) => (_job, _tokenizer, _stop) = (job, tokenizer, stop);

    /// <summary>The scheduler's job.</summary>
    public GenerationJob Job => _job;

    /// <summary>
    /// The text in pieces as tokens arrive. A piece is held back while it ends in half a UTF-8 character or could
    /// be the start of a stop string; the text stops before the first stop string (OpenAI leaves it out).
    /// </summary>
    public async IAsyncEnumerable<string> StreamAsync([EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        var tokens = new List<int>();
        var sent = 0;
        var holdBack = _stop.Count == 0 ? 0 : _stop.Max(s => s.Length) - 1;
        await foreach (var token in _job.Tokens.ReadAllAsync(cancellationToken).ConfigureAwait(false))
        {
            tokens.Add(checked((int)token));
            var (text, stopped) = Cut(_tokenizer.Decode(tokens));
            var ready = stopped ? text.Length : text.EndsWith('\uFFFD') ? sent : Math.Max(sent, text.Length - holdBack);
            if (ready > sent)
            {
                yield return text[sent..ready];
                sent = ready;
            }
            if (stopped) break;
        }
        var (final, _) = Cut(_tokenizer.Decode(tokens));
        if (final.Length > sent) yield return final[sent..];
    }

    /// <summary>The whole text, its finish reason and token counts, once the request has ended.</summary>
    public async Task<TextResult> CompleteAsync()
    {
        var outcome = await _job.Completion.ConfigureAwait(false);
        var (text, _) = Cut(_tokenizer.Decode(outcome.Tokens.Select(t => checked((int)t))));
        return new TextResult(text, outcome.FinishReason, outcome.PromptTokens, outcome.Tokens.Count);
    }

    private (string Text, bool Stopped) Cut(string text)
    {
        var at = _stop.Select(s => text.IndexOf(s, StringComparison.Ordinal)).Where(i => i >= 0).DefaultIfEmpty(-1).Min();
        return at >= 0 ? (text[..at], true) : (text, false);
    }
}

/// <summary>A finished request.</summary>
/// <param name="Text">The generated text (special tokens and any stop string left out).</param>
/// <param name="FinishReason">Why it ended.</param>
/// <param name="PromptTokens">Prompt tokens.</param>
/// <param name="CompletionTokens">Generated tokens.</param>
public sealed record TextResult(string Text, FinishReason FinishReason, int PromptTokens, int CompletionTokens)
{
    /// <summary>OpenAI's finish_reason: "stop" or "length".</summary>
    public string OpenAiFinishReason => FinishReason == FinishReason.Length ? "length" : "stop";
}
