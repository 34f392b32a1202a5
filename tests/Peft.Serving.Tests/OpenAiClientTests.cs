using System.ClientModel;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Microsoft.Extensions.AI;
using OpenAI;
using OpenAI.Chat;

namespace Peft.Serving.Tests;

/// <summary>The server over real HTTP on 127.0.0.1, with the official OpenAI library and Microsoft.Extensions.AI.OpenAI as clients.</summary>
public sealed class OpenAiClientTests(ServingFixture fixture) : IClassFixture<ServingFixture>
{
    private OpenAIClient Client => new(new ApiKeyCredential("unused"), new OpenAIClientOptions { Endpoint = new Uri(fixture.BaseUrl, "v1") });

    private string ExpectedChat(string adapter, string user, int maxTokens)
    {
        var prompt = fixture.Served.Text.RenderChat([new Chat.ChatTurn("user", user)]);
        return fixture.Expected(adapter, fixture.Served.Text.Tokenizer.Encode(prompt, addSpecialTokens: false), maxTokens);
    }

    [Fact]
    public async Task Models_lists_the_base_model_and_every_adapter()
    {
        var models = await Client.GetOpenAIModelClient().GetModelsAsync();

        Assert.Equal(["tiny-gpt2", "a1", "a2", "a3", "a4"], models.Value.Select(m => m.Id));
    }

    [Fact]
    public async Task Chat_completion_is_the_adapters_greedy_output()
    {
        var chat = Client.GetChatClient("a3");

        var completion = await chat.CompleteChatAsync([new UserChatMessage("Tell me a joke")], new ChatCompletionOptions { Temperature = 0f, MaxOutputTokenCount = 7 });

        Assert.Equal(ExpectedChat("a3", "Tell me a joke", 7), completion.Value.Content[0].Text);
        Assert.Equal(OpenAI.Chat.ChatFinishReason.Length, completion.Value.FinishReason);
        Assert.Equal(7, completion.Value.Usage.OutputTokenCount);
        Assert.NotEqual(ExpectedChat("a2", "Tell me a joke", 7), completion.Value.Content[0].Text);
    }

    [Fact]
    public async Task Streaming_chat_gives_the_same_text_in_pieces()
    {
        var chat = Client.GetChatClient("a1");
        var pieces = new List<string>();
        OpenAI.Chat.ChatFinishReason? finish = null;

        await foreach (var update in chat.CompleteChatStreamingAsync([new UserChatMessage("Hello there")], new ChatCompletionOptions { Temperature = 0f, MaxOutputTokenCount = 9 }))
        {
            pieces.AddRange(update.ContentUpdate.Select(p => p.Text));
            finish ??= update.FinishReason;
        }

        Assert.True(pieces.Count > 1, "one piece per token (or a few)");
        Assert.Equal(ExpectedChat("a1", "Hello there", 9), string.Concat(pieces));
        Assert.Equal(OpenAI.Chat.ChatFinishReason.Length, finish);
    }

    [Fact]
    public async Task Microsoft_extensions_ai_chat_client_talks_to_the_server()
    {
        Microsoft.Extensions.AI.IChatClient client = Client.GetChatClient("tiny-gpt2").AsIChatClient();

        var response = await client.GetResponseAsync("What is LoRA?", new ChatOptions { Temperature = 0, MaxOutputTokens = 6 });

        Assert.Equal(ExpectedChat(PeftModel.BaseModelName, "What is LoRA?", 6), response.Text);
    }

    [Fact]
    public async Task Completions_take_a_prompt_and_stream_too()
    {
        using var http = new HttpClient { BaseAddress = fixture.BaseUrl };
        var ids = fixture.Served.Text.Tokenizer.Encode("Once upon a time");
        var expected = fixture.Expected("a4", ids, 5);

        var response = await http.PostAsJsonAsync("v1/completions", new { model = "a4", prompt = "Once upon a time", max_tokens = 5, temperature = 0 });
        var body = JsonNode.Parse(await response.Content.ReadAsStringAsync())!;
        var streamed = await http.PostAsJsonAsync("v1/completions", new { model = "a4", prompt = "Once upon a time", max_tokens = 5, temperature = 0, stream = true });
        var events = (await streamed.Content.ReadAsStringAsync()).Split("\n\n", StringSplitOptions.RemoveEmptyEntries);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(expected, body["choices"]![0]!["text"]!.GetValue<string>());
        Assert.Equal(ids.Count, body["usage"]!["prompt_tokens"]!.GetValue<int>());
        Assert.Equal("text/event-stream", streamed.Content.Headers.ContentType?.MediaType);
        Assert.Equal("data: [DONE]", events[^1]);
        Assert.Equal(expected, string.Concat(events[..^1].Select(e => JsonNode.Parse(e["data: ".Length..])!["choices"]![0]!["text"]!.GetValue<string>())));
    }

    [Fact]
    public async Task An_unknown_adapter_is_a_404_naming_it()
    {
        var error = await Assert.ThrowsAsync<ClientResultException>(() => Client.GetChatClient("nope").CompleteChatAsync([new UserChatMessage("hi")]));

        Assert.Equal(404, error.Status);
        Assert.Contains("'nope'", error.Message);
    }

    [Fact]
    public async Task Oversized_requests_are_a_400_naming_the_field()
    {
        var tooMany = await Assert.ThrowsAsync<ClientResultException>(() => Client.GetChatClient("a1").CompleteChatAsync([new UserChatMessage("hi")], new ChatCompletionOptions { MaxOutputTokenCount = 1000 }));
        var tooLong = await Assert.ThrowsAsync<ClientResultException>(() => Client.GetChatClient("a1").CompleteChatAsync([new UserChatMessage(string.Join(' ', Enumerable.Repeat("word", 200)))]));
        using var http = new HttpClient { BaseAddress = fixture.BaseUrl };
        // Expect: 100-continue, as a well-behaved uploader sends: the server answers 413 from Content-Length alone, so the
        // body is never sent (without it the server may close the connection while the client still writes: a broken pipe).
        http.DefaultRequestHeaders.ExpectContinue = true;
        var huge = await http.PostAsync("v1/completions", new StringContent(new string('x', 2 << 20), System.Text.Encoding.UTF8, "application/json"));

        Assert.Equal(400, tooMany.Status);
        Assert.Contains("max_tokens", tooMany.Message);
        Assert.Equal(400, tooLong.Status);
        Assert.Contains("at most 64", tooLong.Message);
        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, huge.StatusCode);
    }
}
