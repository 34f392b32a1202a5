using Microsoft.Extensions.AI;
using Peft.Serving.Chat;
using Peft.Serving.Scheduling;

namespace Peft.Serving.Tests;

/// <summary>The library's own IChatClient, chat templates, cancellation, the bounded queue.</summary>
public sealed class ChatClientAndLimitsTests(ServingFixture fixture) : IClassFixture<ServingFixture>
{
    [Fact]
    public async Task PeftChatClient_answers_in_process_as_the_server_does()
    {
        Microsoft.Extensions.AI.IChatClient client = new PeftChatClient(fixture.Served.Text, "a2");
        var prompt = fixture.Served.Text.RenderChat([new ChatTurn("system", "Be brief."), new ChatTurn("user", "Hi")]);
        var expected = fixture.Expected("a2", fixture.Served.Text.Tokenizer.Encode(prompt, addSpecialTokens: false), 5);

        var response = await client.GetResponseAsync([new(ChatRole.System, "Be brief."), new(ChatRole.User, "Hi")], new ChatOptions { Temperature = 0, MaxOutputTokens = 5 });
        var streamed = string.Concat(await client.GetStreamingResponseAsync([new(ChatRole.System, "Be brief."), new(ChatRole.User, "Hi")], new ChatOptions { Temperature = 0, MaxOutputTokens = 5 })
            .Select(u => u.Text).ToListAsync());
        var other = await client.GetResponseAsync("Hi", new ChatOptions { Temperature = 0, MaxOutputTokens = 5, ModelId = "a3" });

        Assert.Equal(expected, response.Text);
        Assert.Equal(expected, streamed);
        Assert.Equal(5, response.Usage!.OutputTokenCount);
        Assert.Equal("a3", other.ModelId);
        Assert.Throws<NotSupportedException>(() => client.GetResponseAsync("Hi", new ChatOptions { Tools = [AIFunctionFactory.Create(() => 1, "one")] }).GetAwaiter().GetResult());
    }

    [Fact]
    public async Task Requests_tokens_and_batches_are_counted_on_the_meter()
    {
        var seen = new System.Collections.Concurrent.ConcurrentDictionary<string, double>();
        using var listener = new System.Diagnostics.Metrics.MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (instrument.Meter.Name == ServingMetrics.MeterName) l.EnableMeasurementEvents(instrument);
        };
        listener.SetMeasurementEventCallback<long>((instrument, value, _, _) => seen.AddOrUpdate(instrument.Name, value, (_, old) => old + value));
        listener.SetMeasurementEventCallback<int>((instrument, value, _, _) => seen.AddOrUpdate(instrument.Name, value, (_, old) => old + value));
        listener.SetMeasurementEventCallback<double>((instrument, value, _, _) => seen.AddOrUpdate(instrument.Name, 1, (_, old) => old + 1));
        listener.Start();

        var run = await fixture.Served.Text.StartAsync("a1", "Hello", new Sampling(MaxTokens: 3, Temperature: 0));
        await run.CompleteAsync();
        listener.RecordObservableInstruments();

        Assert.True(seen.GetValueOrDefault("peft.serving.requests") >= 1);
        Assert.True(seen.GetValueOrDefault("peft.serving.generated_tokens") >= 3);
        Assert.True(seen.GetValueOrDefault("peft.serving.batch_size") >= 1);
        Assert.True(seen.GetValueOrDefault("peft.serving.queue_time") >= 1);
        Assert.True(seen.GetValueOrDefault("peft.serving.resident_adapters") >= 1);
    }

    [Theory]
    [InlineData(ChatTemplateFamily.ChatMl, "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nU<|im_end|>\n<|im_start|>assistant\n")]
    [InlineData(ChatTemplateFamily.Llama3, "<s><|start_header_id|>system<|end_header_id|>\n\nS<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nU<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n")]
    [InlineData(ChatTemplateFamily.Llama2, "<s>[INST] <<SYS>>\nS\n<</SYS>>\n\nU [/INST]")]
    [InlineData(ChatTemplateFamily.Zephyr, "<|system|>\nS</s>\n<|user|>\nU</s>\n<|assistant|>\n")]
    [InlineData(ChatTemplateFamily.Gemma, "<s><start_of_turn>user\nS\n\nU<end_of_turn>\n<start_of_turn>model\n")]
    public void Each_template_family_renders_as_its_jinja_does(ChatTemplateFamily family, string expected)
    {
        var template = ChatTemplate.For(family, "<s>", "</s>");

        Assert.Equal(expected, template.Render([new ChatTurn("system", "S"), new ChatTurn("user", "U")]));
    }

    [Fact]
    public void A_template_of_no_known_family_is_refused_naming_the_families()
    {
        var error = Assert.Throws<NotSupportedException>(() => ChatTemplate.Parse("{% for m in messages %}{{ m.content }}{% endfor %}"));

        Assert.Contains("ChatML", error.Message);
        Assert.Equal(ChatTemplateFamily.ChatMl, ChatTemplate.Parse(ServingFixture.ChatMlTemplate).Family);
    }

    [Fact]
    public async Task A_request_arriving_while_a_batch_decodes_joins_it_and_finishes_first()
    {
        var text = fixture.Served.Text;
        await using var scheduler = new GenerationScheduler(fixture.Served.Residency, new SchedulerOptions { MaxBatchSize = 4, MaxQueueLength = 4 });
        var longIds = text.Tokenizer.Encode("Once upon a time");
        var shortIds = text.Tokenizer.Encode("The weather today");
        var shortOptions = new GenerationOptions { MaxNewTokens = 3, EosTokenIds = [] };
        var alone = fixture.Served.Residency.Model.Generate(
            TorchSharp.torch.tensor(shortIds.Select(i => (long)i).ToArray(), [1, shortIds.Count]), null, ["a1"], [shortOptions]).Tokens[0];
        using var cancel = new CancellationTokenSource();

        // The long request checks a stop string that never occurs, slowly (20 ms a step): its 120 tokens take seconds, so a
        // test thread held up by the thread pool cannot miss the window in which the short one must join.
        var slow = new GenerationOptions
        {
            MaxNewTokens = 120, EosTokenIds = [], StopStrings = ["\u0000never"],
            Decode = ids => { Thread.Sleep(20); return ""; },
        };
        var running = await scheduler.SubmitAsync(new GenerationRequest("a1", longIds, slow), cancel.Token);
        await running.Tokens.WaitToReadAsync();   // decoding has begun
        var joining = await scheduler.SubmitAsync(new GenerationRequest("a1", shortIds, shortOptions));
        var outcome = await joining.Completion;

        // Batch after batch, the short request would have waited for all 120 tokens of the long one.
        Assert.False(running.Completion.IsCompleted, running.Completion.IsFaulted ? running.Completion.Exception!.ToString() : $"the long request finished first: {running.Completion.Status}");
        Assert.Equal(alone, outcome.Tokens);
        cancel.Cancel();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => running.Completion);
    }

    [Fact]
    public async Task A_cancelled_request_stops_and_a_full_queue_refuses()
    {
        var text = fixture.Served.Text;
        await using var scheduler = new GenerationScheduler(fixture.Served.Residency, new SchedulerOptions { MaxBatchSize = 1, MaxQueueLength = 1 });
        var ids = text.Tokenizer.Encode("Once upon a time");
        using var cancel = new CancellationTokenSource();

        // Request 1 decodes (120 tokens take a while, and no end-of-sequence id may end it early); meanwhile one more
        // waits in the queue's one slot and a third is refused.
        var running = await scheduler.SubmitAsync(new GenerationRequest("a1", ids, new GenerationOptions { MaxNewTokens = 120, EosTokenIds = [] }), cancel.Token);
        await running.Tokens.WaitToReadAsync();
        // The same adapter: loading another one from disk here would give request 1 time to finish and free the slot.
        var waiting = await scheduler.SubmitAsync(new GenerationRequest("a1", ids, new GenerationOptions { MaxNewTokens = 2 }));
        await Assert.ThrowsAsync<QueueFullException>(() => scheduler.SubmitAsync(new GenerationRequest("a1", ids, new GenerationOptions { MaxNewTokens = 2 })));
        cancel.Cancel();   // the client went away: its row stops at the next step

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => running.Completion);
        var streamed = 0;
        try
        {
            await foreach (var _ in running.Tokens.ReadAllAsync()) streamed++;
        }
        catch (OperationCanceledException)
        {
        }
        Assert.InRange(streamed, 1, 119);
        Assert.Equal(2, (await waiting.Completion).Tokens.Count);
    }

    [Fact]
    public async Task A_request_without_sampling_fields_takes_the_models_generation_config()
    {
        var text = fixture.Served.Text;
        var ids = text.Tokenizer.Encode("Once upon a time");
        var greedy = fixture.Expected("a1", ids, 6);
        // The model's file says temperature 0: a request naming none decodes greedily, one naming 1.5 samples.
        var fromFile = new TextGeneration(text.Scheduler, text.Tokenizer, text.ChatTemplate, text.Limits, new ModelSamplingDefaults(Temperature: 0, MaxNewTokens: 6));
        var taken = await (await fromFile.StartAsync("a1", "Once upon a time", new Sampling())).CompleteAsync();
        Assert.Equal(greedy, taken.Text);
        Assert.Equal(6, taken.CompletionTokens);
        var sampled = new List<string>();
        for (long seed = 0; seed < 4; seed++)
        {
            sampled.Add((await (await fromFile.StartAsync("a1", "Once upon a time", new Sampling(MaxTokens: 6, Temperature: 1.5, Seed: seed))).CompleteAsync()).Text);
        }
        Assert.Contains(sampled, s => s != greedy);
    }

    [Fact]
    public void Generation_config_defaults_are_only_the_keys_the_file_has()
    {
        var directory = Directory.CreateTempSubdirectory("peft-genconfig-").FullName;
        try
        {
            Assert.Same(ModelSamplingDefaults.None, ModelSamplingDefaults.FromDirectory(directory));
            File.WriteAllText(Path.Combine(directory, "generation_config.json"), """{"do_sample": true, "temperature": 0.6, "top_p": 0.9, "eos_token_id": [128001, 128009], "max_new_tokens": 100}""");
            Assert.Equal(new ModelSamplingDefaults(0.6, 0.9, null, null, 100), ModelSamplingDefaults.FromDirectory(directory) with { EosTokenIds = null });
            Assert.Equal([128001L, 128009L], ModelSamplingDefaults.FromDirectory(directory).EosTokenIds);
            File.WriteAllText(Path.Combine(directory, "generation_config.json"), """{"top_k": "many"}""");
            var error = Assert.Throws<InvalidDataException>(() => ModelSamplingDefaults.FromDirectory(directory));
            Assert.Contains("top_k", error.Message, StringComparison.Ordinal);
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }
}
