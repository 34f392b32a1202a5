using Peft.Methods.PrefixTuning;
using Peft.Methods.PromptTuning;
using Peft.PromptLearning;
using TorchSharp;

namespace Peft.Tests.PromptLearning;

/// <summary>How prompt encoders start: from a text's token embeddings, sampled vocabulary, or zeros.</summary>
public class PromptInitTests
{
    private sealed class WordTokenizer(Dictionary<string, long> vocabulary) : IPromptTokenizer
    {
        public IReadOnlyList<long> Encode(string text) => text.Split(' ').Select(w => vocabulary[w]).ToArray();
    }

    private static torch.Tensor Prompts(PeftModel peft) => ((PromptLearningAdapter)peft.ActiveAdapter).Encoder.Prompts();

    [Fact]
    public void TextInitRepeatsTheTextsTokenEmbeddings()
    {
        var model = TinyModels.Gpt2(TaskType.CausalLM);
        var words = model.InputEmbeddings.call(torch.tensor(new long[] { 3, 7, 3, 7, 3 }));
        var config = new PromptTuningConfig
        {
            NumVirtualTokens = 5,
            PromptTuningInit = PromptTuningConfig.TextInit,
            PromptTuningInitText = "good movie",
            Tokenizer = new WordTokenizer(new() { ["good"] = 3, ["movie"] = 7 }),
        };

        var peft = TinyModels.Peft(model, config);

        TinyModels.AssertClose(words, Prompts(peft), 0);
    }

    [Fact]
    public void TextInitTakesTokenIdsWithoutATokenizer()
    {
        var model = TinyModels.Gpt2(TaskType.CausalLM);
        var words = model.InputEmbeddings.call(torch.tensor(new long[] { 5, 9, 2, 5 }));
        var config = new PromptTuningConfig { NumVirtualTokens = 4, PromptTuningInit = "TEXT", PromptTuningInitText = "x", InitTokenIds = [5, 9, 2] };

        TinyModels.AssertClose(words, Prompts(TinyModels.Peft(model, config)), 0);
    }

    [Fact]
    public void SampleVocabInitCopiesRowsOfTheWordEmbedding()
    {
        var model = TinyModels.Gpt2(TaskType.CausalLM);
        var vocabulary = model.InputEmbeddings.call(torch.arange(16));
        var prompts = Prompts(TinyModels.Peft(model, new PromptTuningConfig { NumVirtualTokens = 6, PromptTuningInit = "SAMPLE_VOCAB" }));

        for (int i = 0; i < 6; i++)
        {
            var distances = (vocabulary - prompts[i]).abs().sum(dim: 1);
            Assert.Equal(0f, distances.min().item<float>());
        }
    }

    [Fact]
    public void ZeroInitStartsPrefixesAtZero()
    {
        foreach (var projection in new[] { false, true })
        {
            var peft = TinyModels.Peft(TinyModels.Gpt2(TaskType.CausalLM), new PrefixTuningConfig { NumVirtualTokens = 3, InitWeights = "zero", PrefixProjection = projection });
            var prompts = Prompts(peft);
            Assert.Equal(new long[] { 3, 2 * 2 * 8 }, prompts.shape);
            Assert.Equal(0f, prompts.abs().max().item<float>());
        }
    }
}
