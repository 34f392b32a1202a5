using System.Runtime.CompilerServices;
using Microsoft.Extensions.AI;
using Peft.Serving.Chat;

namespace Peft.Serving;

/// <summary>
/// An <see cref="IChatClient"/> (Microsoft.Extensions.AI) over a served <see cref="PeftModel"/>: messages go through
/// the model's chat template and tokenizer, and the request runs in the shared <see cref="Scheduling.GenerationScheduler"/>,
/// batched with every other request, whatever their adapters. <see cref="ChatOptions.ModelId"/> picks another adapter
/// per call. Options the model cannot honour (tools, response formats, penalties) are refused, naming the option.
/// </summary>
/// <param name="text">The text service (tokenizer, chat template, limits, scheduler).</param>
/// <param name="adapter">The adapter used when a call names none (<see cref="PeftModel.BaseModelName"/> for the base model).</param>
public sealed class PeftChatClient(TextGeneration text, string adapter) : IChatClient
{
    /// <inheritdoc />
    public async Task<ChatResponse> GetResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default)
    {
        var (name, run) = await StartAsync(messages, options, cancellationToken).ConfigureAwait(false);
        var result = await run.CompleteAsync().ConfigureAwait(false);
        return new ChatResponse(new ChatMessage(ChatRole.Assistant, result.Text))
        {
            ModelId = name,
            FinishReason = result.FinishReason == FinishReason.Length ? ChatFinishReason.Length : ChatFinishReason.Stop,
            Usage = new UsageDetails { InputTokenCount = result.PromptTokens, OutputTokenCount = result.CompletionTokens, TotalTokenCount = result.PromptTokens + result.CompletionTokens },
        };
    }

    /// <inheritdoc />
    public async IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null,
        [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        var (name, run) = await StartAsync(messages, options, cancellationToken).ConfigureAwait(false);
        await foreach (var piece in run.StreamAsync(cancellationToken).ConfigureAwait(false))
        {
            yield return new ChatResponseUpdate(ChatRole.Assistant, piece) { ModelId = name };
        }
        var result = await run.CompleteAsync().ConfigureAwait(false);
        yield return new ChatResponseUpdate
        {
            Role = ChatRole.Assistant,
            ModelId = name,
            FinishReason = result.FinishReason == FinishReason.Length ? ChatFinishReason.Length : ChatFinishReason.Stop,
        };
    }

    private async Task<(string Adapter, TextRun Run)> StartAsync(IEnumerable<ChatMessage> messages, ChatOptions? options, CancellationToken cancellationToken)
    {
        Refuse(options);
        var name = options?.ModelId ?? adapter;
        var prompt = text.RenderChat([.. messages.Select(m => new ChatTurn(m.Role.Value, m.Text))]);
        var sampling = new Sampling(options?.MaxOutputTokens, options?.Temperature, options?.TopP, options?.TopK, options?.Seed, options?.StopSequences is { } stop ? [.. stop] : null);
        return (name, await text.StartAsync(name, prompt, sampling, addSpecialTokens: false, cancellationToken).ConfigureAwait(false));
    }

    private static void Refuse(ChatOptions? options)
    {
        if (options is null) return;
        string? refused = options switch
        {
            { Tools.Count: > 0 } => nameof(ChatOptions.Tools),
            { ResponseFormat: not null and not ChatResponseFormatText } => nameof(ChatOptions.ResponseFormat),
            { FrequencyPenalty: not null and not 0 } => nameof(ChatOptions.FrequencyPenalty),
            { PresencePenalty: not null and not 0 } => nameof(ChatOptions.PresencePenalty),
            _ => null,
        };
        if (refused is not null) throw new NotSupportedException($"ChatOptions.{refused} is not supported by {nameof(PeftChatClient)}.");
    }

    /// <inheritdoc />
    public object? GetService(Type serviceType, object? serviceKey = null) =>
        serviceKey is not null ? null
        : serviceType == typeof(ChatClientMetadata) ? new ChatClientMetadata("peft-dotnet", null, adapter)
        : serviceType.IsInstanceOfType(this) ? this
        : serviceType == typeof(TextGeneration) ? text
        : null;

    /// <inheritdoc />
    public void Dispose()
    {
    }
}
