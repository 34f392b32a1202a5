using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Peft.Serving.Chat;
using Peft.Serving.Scheduling;

namespace Peft.Serving.Http;

/// <summary>
/// OpenAI-compatible endpoints over a <see cref="ServedModel"/>: <c>GET /v1/models</c>, <c>POST /v1/completions</c>,
/// <c>POST /v1/chat/completions</c> (both with <c>"stream": true</c> as server-sent events) and <c>GET /health</c>.
/// A request's <c>model</c> names the adapter (or the base model), as vLLM and LoRAX do; a request can never name a path.
/// </summary>
public static class OpenAiEndpoints
{
    private static readonly JsonSerializerOptions Compact = new() { WriteIndented = false };

    /// <summary>Maps the endpoints onto <paramref name="app"/> (the <see cref="ServedModel"/> comes from its services).</summary>
    public static IEndpointRouteBuilder MapPeftOpenAi(this IEndpointRouteBuilder app)
    {
        app.MapGet("/health", (ServedModel served) => Results.Json(new JsonObject
        {
            ["status"] = "ok",
            ["resident_adapters"] = new JsonArray([.. served.Residency.Resident.Select(r => (JsonNode)new JsonObject { ["name"] = r.Name, ["bytes"] = r.Bytes, ["in_use"] = r.Pins })]),
        }));
        app.MapGet("/v1/models", (HttpContext context, ServedModel served) =>
        {
            if (Authorize(context, served, null) is { } refused) return refused;
            var ids = new[] { served.BaseModelId }.Concat(served.Residency.Known).Where(id => Allowed(context, served, id));
            return Results.Json(new JsonObject
            {
                ["object"] = "list",
                ["data"] = new JsonArray([.. ids.Select(id => (JsonNode)new JsonObject { ["id"] = id, ["object"] = "model", ["created"] = 0, ["owned_by"] = "peft" })]),
            });
        });
        app.MapPost("/v1/completions", (HttpContext context, ServedModel served) => HandleAsync(context, served, chat: false));
        app.MapPost("/v1/chat/completions", (HttpContext context, ServedModel served) => HandleAsync(context, served, chat: true));
        app.MapPost("/v1/classify", ClassifyAsync);
        return app;
    }

    private static async Task<IResult> HandleAsync(HttpContext context, ServedModel served, bool chat)
    {
        var logger = context.RequestServices.GetRequiredService<ILoggerFactory>().CreateLogger(typeof(OpenAiEndpoints));
        var aborted = context.RequestAborted;
        try
        {
            if (context.Request.ContentLength > served.Options.MaxRequestBodyBytes) return Error(413, $"The request body exceeds {served.Options.MaxRequestBodyBytes} bytes.", "invalid_request_error", null);
            var body = await ReadBodyAsync(context, served.Options.MaxRequestBodyBytes, aborted);
            var model = body["model"]?.GetValue<string>() ?? throw new InvalidRequestException("model is required.", "model");
            if (Authorize(context, served, model) is { } refused) return refused;
            var adapter = served.AdapterOf(model);
            if (!served.Residency.IsKnown(adapter)) return Error(404, $"The model '{model}' does not exist.", "invalid_request_error", "model", "model_not_found");
            var stream = body["stream"]?.GetValue<bool>() ?? false;
            var sampling = SamplingOf(body, chat);
            var prompt = chat ? served.Text.RenderChat(TurnsOf(body)) : PromptOf(body);
            var run = await served.Text.StartAsync(adapter, prompt, sampling, addSpecialTokens: !chat, aborted);
            var id = (chat ? "chatcmpl-" : "cmpl-") + Guid.NewGuid().ToString("N");
            var created = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
            if (stream)
            {
                await StreamAsync(context, run, id, created, model, chat, aborted);
                return Results.Empty;
            }
            var result = await run.CompleteAsync();
            return Results.Json(Response(id, created, model, chat, result));
        }
        catch (InvalidRequestException e)
        {
            return Error(400, e.Message, "invalid_request_error", e.Param);
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException or FormatException)
        {
            return Error(400, $"The request body is not valid: {e.Message}", "invalid_request_error", null);
        }
        catch (BadHttpRequestException e) when (e.StatusCode == StatusCodes.Status413PayloadTooLarge)
        {
            return Error(413, $"The request body exceeds {served.Options.MaxRequestBodyBytes} bytes.", "invalid_request_error", null);
        }
        catch (QueueFullException e)
        {
            return Error(429, e.Message, "rate_limit_exceeded", null);
        }
        catch (AdapterCapacityException e)
        {
            return Error(503, e.Message, "server_busy", null);
        }
        catch (OperationCanceledException) when (aborted.IsCancellationRequested)
        {
            logger.LogInformation("Client went away; its request was cancelled.");
            return Results.Empty;
        }
    }

    /// <summary><c>{"model", "input": text or [texts]}</c> → one entry per text: label, score, and every label's probability.</summary>
    private static async Task<IResult> ClassifyAsync(HttpContext context, ServedModel served)
    {
        try
        {
            var body = await ReadBodyAsync(context, served.Options.MaxRequestBodyBytes, context.RequestAborted);
            var model = body["model"]?.GetValue<string>() ?? throw new InvalidRequestException("model is required.", "model");
            if (Authorize(context, served, model) is { } refused) return refused;
            if (served.Classifier is not { } classifier) return Error(400, $"This server serves a {served.Task} model; /v1/classify needs SEQ_CLS adapters.", "invalid_request_error", "model");
            var adapter = served.AdapterOf(model);
            if (!served.Residency.IsKnown(adapter)) return Error(404, $"The model '{model}' does not exist.", "invalid_request_error", "model", "model_not_found");
            IReadOnlyList<string> texts = body["input"] switch
            {
                JsonArray array => [.. array.Select(t => t!.GetValue<string>())],
                JsonValue single => [single.GetValue<string>()],
                _ => throw new InvalidRequestException("input is required (a string or a list of strings).", "input"),
            };
            if (texts.Count > served.Options.Scheduler.MaxBatchSize * 8) throw new InvalidRequestException($"At most {served.Options.Scheduler.MaxBatchSize * 8} texts per request.", "input");
            var results = await classifier.ClassifyAsync(adapter, texts, context.RequestAborted);
            return Results.Json(new JsonObject
            {
                ["object"] = "list",
                ["model"] = model,
                ["data"] = new JsonArray([.. results.Select((r, i) => (JsonNode)new JsonObject
                {
                    ["index"] = i,
                    ["label"] = r.Label,
                    ["score"] = r.Score,
                    ["scores"] = new JsonObject([.. r.Scores.Select(s => KeyValuePair.Create(s.Key, (JsonNode?)JsonValue.Create(s.Value)))]),
                })]),
            });
        }
        catch (InvalidRequestException e)
        {
            return Error(400, e.Message, "invalid_request_error", e.Param);
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException or FormatException)
        {
            return Error(400, $"The request body is not valid: {e.Message}", "invalid_request_error", null);
        }
        catch (AdapterCapacityException e)
        {
            return Error(503, e.Message, "server_busy", null);
        }
    }

    private static async Task<JsonObject> ReadBodyAsync(HttpContext context, long limit, CancellationToken cancellationToken)
    {
        using var buffer = new MemoryStream();
        var chunk = new byte[16384];
        int read;
        while ((read = await context.Request.Body.ReadAsync(chunk, cancellationToken)) > 0)
        {
            buffer.Write(chunk, 0, read);
            if (buffer.Length > limit) throw new BadHttpRequestException($"The request body exceeds {limit} bytes.", StatusCodes.Status413PayloadTooLarge);
        }
        return JsonNode.Parse(buffer.ToArray()) as JsonObject ?? throw new InvalidRequestException("The request body must be a JSON object.");
    }

    private static Sampling SamplingOf(JsonObject body, bool chat)
    {
        foreach (var field in new[] { "n", "best_of" })
        {
            if (body[field] is { } n && n.GetValue<int>() != 1) throw new InvalidRequestException($"{field} must be 1 here.", field);
        }
        foreach (var field in new[] { "tools", "functions", "logprobs", "echo", "suffix", "logit_bias", "response_format" })
        {
            if (body[field] is { } value && value.GetValueKind() is not (JsonValueKind.Null or JsonValueKind.False) && !(field == "response_format" && value["type"]?.GetValue<string>() == "text"))
            {
                throw new InvalidRequestException($"{field} is not supported by this server.", field);
            }
        }
        foreach (var field in new[] { "frequency_penalty", "presence_penalty" })
        {
            if (body[field] is { } value && value.GetValue<double>() != 0) throw new InvalidRequestException($"{field} is not supported by this server.", field);
        }
        var maxTokens = (chat ? body["max_completion_tokens"] ?? body["max_tokens"] : body["max_tokens"])?.GetValue<int>();
        IReadOnlyList<string>? stop = body["stop"] switch
        {
            null => null,
            JsonArray array => [.. array.Select(s => s!.GetValue<string>())],
            var single => [single.GetValue<string>()],
        };
        return new Sampling(maxTokens, body["temperature"]?.GetValue<double>(), body["top_p"]?.GetValue<double>(), body["top_k"]?.GetValue<int>(), body["seed"]?.GetValue<long>(), stop);
    }

    private static string PromptOf(JsonObject body) => body["prompt"] switch
    {
        JsonValue value when value.GetValueKind() == JsonValueKind.String => value.GetValue<string>(),
        JsonArray { Count: 1 } array when array[0]?.GetValueKind() == JsonValueKind.String => array[0]!.GetValue<string>(),
        null => throw new InvalidRequestException("prompt is required.", "prompt"),
        _ => throw new InvalidRequestException("prompt must be one string (a batch of prompts or token ids is not supported; send one request each).", "prompt"),
    };

    private static List<ChatTurn> TurnsOf(JsonObject body)
    {
        if (body["messages"] is not JsonArray messages) throw new InvalidRequestException("messages is required.", "messages");
        return [.. messages.Select(m => new ChatTurn(
            m?["role"]?.GetValue<string>() ?? throw new InvalidRequestException("Every message needs a role.", "messages"),
            ContentOf(m["content"])))];
    }

    /// <summary>A message's content: a string, or text parts (other part types are refused).</summary>
    private static string ContentOf(JsonNode? content) => content switch
    {
        JsonValue value => value.GetValue<string>(),
        JsonArray parts => string.Concat(parts.Select(p => p?["type"]?.GetValue<string>() == "text"
            ? p["text"]?.GetValue<string>() ?? ""
            : throw new InvalidRequestException($"Message content of type '{p?["type"]}' is not supported (text only).", "messages"))),
        null => "",
        _ => throw new InvalidRequestException("A message's content must be a string or text parts.", "messages"),
    };

    private static JsonObject Response(string id, long created, string model, bool chat, TextResult result)
    {
        JsonObject choice = chat
            ? new() { ["index"] = 0, ["message"] = new JsonObject { ["role"] = "assistant", ["content"] = result.Text }, ["finish_reason"] = result.OpenAiFinishReason, ["logprobs"] = null }
            : new() { ["index"] = 0, ["text"] = result.Text, ["finish_reason"] = result.OpenAiFinishReason, ["logprobs"] = null };
        return new JsonObject
        {
            ["id"] = id,
            ["object"] = chat ? "chat.completion" : "text_completion",
            ["created"] = created,
            ["model"] = model,
            ["choices"] = new JsonArray(choice),
            ["usage"] = Usage(result),
        };
    }

    private static JsonObject Usage(TextResult result) => new()
    {
        ["prompt_tokens"] = result.PromptTokens,
        ["completion_tokens"] = result.CompletionTokens,
        ["total_tokens"] = result.PromptTokens + result.CompletionTokens,
    };

    /// <summary>Server-sent events: one chunk per piece of text, a last chunk with the finish reason and usage, then <c>[DONE]</c>.</summary>
    private static async Task StreamAsync(HttpContext context, TextRun run, string id, long created, string model, bool chat, CancellationToken cancellationToken)
    {
        var response = context.Response;
        response.ContentType = "text/event-stream";
        response.Headers.CacheControl = "no-cache";
        var first = true;
        await foreach (var piece in run.StreamAsync(cancellationToken))
        {
            await WriteEventAsync(response, Chunk(id, created, model, chat, piece, null, first), cancellationToken);
            first = false;
        }
        var result = await run.CompleteAsync();
        var last = Chunk(id, created, model, chat, first && chat ? "" : null, result.OpenAiFinishReason, first);
        last["usage"] = Usage(result);
        await WriteEventAsync(response, last, cancellationToken);
        await response.WriteAsync("data: [DONE]\n\n", cancellationToken);
        await response.Body.FlushAsync(cancellationToken);
    }

    private static JsonObject Chunk(string id, long created, string model, bool chat, string? text, string? finishReason, bool first)
    {
        JsonObject choice = chat
            ? new() { ["index"] = 0, ["delta"] = Delta(text, first), ["finish_reason"] = finishReason, ["logprobs"] = null }
            : new() { ["index"] = 0, ["text"] = text ?? "", ["finish_reason"] = finishReason, ["logprobs"] = null };
        return new JsonObject
        {
            ["id"] = id,
            ["object"] = chat ? "chat.completion.chunk" : "text_completion",
            ["created"] = created,
            ["model"] = model,
            ["choices"] = new JsonArray(choice),
        };
    }

    private static JsonObject Delta(string? text, bool first)
    {
        var delta = new JsonObject();
        if (first) delta["role"] = "assistant";
        if (text is not null) delta["content"] = text;
        return delta;
    }

    private static async Task WriteEventAsync(HttpResponse response, JsonObject data, CancellationToken cancellationToken)
    {
        await response.WriteAsync("data: " + data.ToJsonString(Compact) + "\n\n", cancellationToken);
        await response.Body.FlushAsync(cancellationToken);
    }

    private static IResult? Authorize(HttpContext context, ServedModel served, string? model)
    {
        if (served.Options.ApiKeys.Count == 0) return null;
        if (KeyOf(context) is not { } key || !served.Options.ApiKeys.ContainsKey(key)) return Error(401, "A valid API key is required (Authorization: Bearer <key>).", "invalid_request_error", null, "invalid_api_key");
        return model is null || Allowed(context, served, model) ? null : Error(403, $"This API key may not use the model '{model}'.", "invalid_request_error", "model", "model_not_allowed");
    }

    private static bool Allowed(HttpContext context, ServedModel served, string model)
    {
        if (served.Options.ApiKeys.Count == 0) return true;
        return KeyOf(context) is { } key && served.Options.ApiKeys.TryGetValue(key, out var allowed) && (allowed.Contains("*") || allowed.Contains(model));
    }

    private static string? KeyOf(HttpContext context)
    {
        var header = context.Request.Headers.Authorization.ToString();
        return header.StartsWith("Bearer ", StringComparison.Ordinal) ? header["Bearer ".Length..].Trim() : null;
    }

    private static IResult Error(int status, string message, string type, string? param, string? code = null) =>
        Results.Json(new JsonObject { ["error"] = new JsonObject { ["message"] = message, ["type"] = type, ["param"] = param, ["code"] = code } }, statusCode: status);
}
