using System.Diagnostics;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Xunit.Abstractions;

namespace Peft.Serving.Tests;

/// <summary>
/// 200 requests, 16 at a time, over four adapters and the base model: every response equals its single-request
/// greedy output. Throughput, latency and memory are printed (test output), never asserted on time.
/// </summary>
public sealed class LoadTests(ServingFixture fixture, ITestOutputHelper output) : IClassFixture<ServingFixture>
{
    private static readonly string[] Prompts = ["Once upon a time", "The capital of France is", "def fibonacci(n):", "Beam me up", "In 1969, the first", "Two eggs, toast and"];

    [Fact]
    public async Task Two_hundred_mixed_requests_all_get_their_own_greedy_output()
    {
        string[] models = [.. ServingFixture.Adapters, "tiny-gpt2"];
        var requests = Enumerable.Range(0, 200).Select(i => (Model: models[i % models.Length], Prompt: Prompts[i * 7 % Prompts.Length], MaxTokens: 4 + i % 9)).ToList();
        var expected = requests.Distinct().ToDictionary(r => r, r =>
            fixture.Expected(fixture.Served.AdapterOf(r.Model), fixture.Served.Text.Tokenizer.Encode(r.Prompt), r.MaxTokens));
        Assert.True(expected.Where(e => e.Key.Prompt == Prompts[0] && e.Key.MaxTokens == 8).Select(e => e.Value).Distinct().Count() > 1 || expected.Values.Distinct().Count() > 10,
            "the adapters must answer differently, else a mixed-up row would pass");
        using var http = new HttpClient { BaseAddress = fixture.BaseUrl };

        // One at a time first (the baseline), then 16 concurrent.
        var sequential = await RunAsync(http, requests.Take(40).ToList(), expected, concurrency: 1);
        var rssBefore = Process.GetCurrentProcess().WorkingSet64;
        var concurrent = await RunAsync(http, requests, expected, concurrency: 16);
        var again = await RunAsync(http, requests, expected, concurrency: 16);
        var rssAfter = Process.GetCurrentProcess().WorkingSet64;

        Assert.Empty(concurrent.Errors);
        Assert.Empty(again.Errors);
        Assert.Empty(sequential.Errors);
        output.WriteLine($"one at a time : {sequential.Summary}");
        output.WriteLine($"16 concurrent : {concurrent.Summary}");
        output.WriteLine($"again         : {again.Summary}");
        output.WriteLine($"RSS {rssBefore / 1e6:F0} MB before the two concurrent runs, {rssAfter / 1e6:F0} MB after");
    }

    private static async Task<Run> RunAsync(HttpClient http, List<(string Model, string Prompt, int MaxTokens)> requests,
        Dictionary<(string, string, int), string> expected, int concurrency)
    {
        var latencies = new double[requests.Count];
        var errors = new System.Collections.Concurrent.ConcurrentBag<string>();
        var clock = Stopwatch.StartNew();
        await Parallel.ForEachAsync(Enumerable.Range(0, requests.Count), new ParallelOptions { MaxDegreeOfParallelism = concurrency }, async (i, cancellationToken) =>
        {
            var (model, prompt, maxTokens) = requests[i];
            var started = Stopwatch.GetTimestamp();
            var response = await http.PostAsJsonAsync("v1/completions", new { model, prompt, max_tokens = maxTokens, temperature = 0 }, cancellationToken);
            var body = await response.Content.ReadAsStringAsync(cancellationToken);
            latencies[i] = Stopwatch.GetElapsedTime(started).TotalMilliseconds;
            if (!response.IsSuccessStatusCode)
            {
                errors.Add($"{i}: {(int)response.StatusCode} {body}");
                return;
            }
            var text = JsonNode.Parse(body)!["choices"]![0]!["text"]!.GetValue<string>();
            if (text != expected[(model, prompt, maxTokens)]) errors.Add($"{i} ({model}, '{prompt}', {maxTokens}): got '{text}', alone '{expected[(model, prompt, maxTokens)]}'");
        });
        var elapsed = clock.Elapsed;
        var sorted = latencies.Order().ToArray();
        return new Run([.. errors], $"{requests.Count} requests in {elapsed.TotalSeconds:F2} s = {requests.Count / elapsed.TotalSeconds:F1} req/s, latency p50 {sorted[sorted.Length / 2]:F0} ms, p95 {sorted[(int)(sorted.Length * 0.95)]:F0} ms");
    }

    private sealed record Run(IReadOnlyList<string> Errors, string Summary);
}
