using Peft.Modeling;
using Peft.Tests.Checkpoints;
using TorchSharp;

namespace Peft.Tests.Runtime;

/// <summary>Sampling, stop ids and stop strings, generation_config.json; greedy through the options path is the same as Greedy.</summary>
public class SamplingTests
{
    private static readonly PreTrainedModel Model = PeftModels.Default.LoadPretrained(Fixtures.Path("models", "gpt2-clm"), TaskType.CausalLM);
    private static readonly torch.Tensor Prompt = torch.tensor(new long[] { 5, 17, 42, 9 }, [1, 4]);

    private static long[] Run(GenerationOptions options) => Generation.Generate(Model, Model.Config, Prompt, null, options).data<long>().ToArray();

    private static long[] Greedy(int tokens) => Generation.Greedy(Model, Model.Config, Prompt, null, tokens).data<long>().ToArray();

    [Fact]
    public void Without_sampling_the_options_path_is_greedy()
    {
        Assert.Equal(Greedy(8), Run(new GenerationOptions { MaxNewTokens = 8 }));
    }

    [Theory]
    [InlineData(1, 1.0, 1.0)]     // top-k 1 leaves the argmax only
    [InlineData(0, 1e-9, 1.0)]    // a nucleus of (almost) no mass keeps the most likely token only
    [InlineData(0, 1.0, 1e-4)]    // a temperature near 0 makes the distribution one-hot
    public void Sampling_that_leaves_one_candidate_is_greedy(int topK, double topP, double temperature)
    {
        Assert.Equal(Greedy(8), Run(new GenerationOptions { MaxNewTokens = 8, DoSample = true, TopK = topK, TopP = topP, Temperature = temperature, Seed = 3 }));
    }

    [Fact]
    public void A_seed_makes_samples_reproducible()
    {
        var options = new GenerationOptions { MaxNewTokens = 12, DoSample = true, TopK = 0, Temperature = 2.0, Seed = 11 };

        Assert.Equal(Run(options), Run(options));
        Assert.Equal(4 + 12, Run(options).Length);
    }

    [Fact]
    public void A_stop_id_ends_the_row_after_it()
    {
        var greedy = Greedy(8)[4..];
        var stop = greedy[2];
        var expected = Array.IndexOf(greedy, stop) + 1;

        var ids = Run(new GenerationOptions { MaxNewTokens = 8, StopTokenIds = [stop] });

        Assert.Equal(4 + expected, ids.Length);
        Assert.Equal(greedy[..expected], ids[4..]);
    }

    [Fact]
    public void A_stop_string_ends_the_row_once_the_decoded_tokens_contain_it()
    {
        static string Decode(IReadOnlyList<int> ids) => string.Concat(ids.Select(i => $"<{i}>"));
        var greedy = Greedy(8)[4..];
        var stop = $"<{greedy[3]}>";
        var expected = Enumerable.Range(1, 8).First(k => Decode([.. greedy[..k].Select(i => (int)i)]).Contains(stop, StringComparison.Ordinal));

        var ids = Run(new GenerationOptions { MaxNewTokens = 8, StopStrings = [stop], Decode = Decode });

        Assert.Equal(greedy[..expected], ids[4..]);
    }

    [Fact]
    public void Generation_config_json_sets_the_options()
    {
        using var scratch = new ScratchDirectory();
        File.WriteAllText(Path.Combine(scratch.Path, "generation_config.json"),
            """{"do_sample": true, "temperature": 0.7, "top_k": 5, "top_p": 0.9, "max_new_tokens": 3, "eos_token_id": [5, 6], "transformers_version": "4.57.0"}""");

        var options = GenerationOptions.FromDirectory(scratch.Path);

        Assert.True(options.DoSample);
        Assert.Equal((0.7, 5, 0.9, 3), (options.Temperature, options.TopK, options.TopP, options.MaxNewTokens));
        Assert.Equal([5L, 6L], options.EosTokenIds!);
        Assert.Equal(new GenerationOptions().MaxNewTokens, GenerationOptions.FromDirectory(Fixtures.Path("models", "gpt2-clm")).MaxNewTokens);
    }

    [Fact]
    public void Options_that_cannot_work_are_refused_by_name()
    {
        Assert.Contains("TopP", Assert.Throws<ArgumentException>(() => Run(new GenerationOptions { TopP = 0 })).Message);
        Assert.Contains("Temperature", Assert.Throws<ArgumentException>(() => Run(new GenerationOptions { Temperature = 0 })).Message);
        Assert.Contains("Decode", Assert.Throws<ArgumentException>(() => Run(new GenerationOptions { StopStrings = ["x"] })).Message);
    }
}
