using Peft.Tests.Checkpoints;
using TorchSharp;

namespace Peft.Tests.Runtime;

/// <summary>Greedy generation of a left-padded batch equals generating each prompt alone.</summary>
public class GenerationTests
{
    [Theory]
    [InlineData("gpt2-clm")]
    [InlineData("llama-clm")]
    [InlineData("gpt_neox-clm")]
    [InlineData("opt-clm")]
    [InlineData("bloom-clm")]
    public void LeftPaddedRowsGenerateAsIfAlone(string modelName)
    {
        var model = PeftModels.Default.LoadPretrained(Fixtures.Path("models", modelName), TaskType.CausalLM);
        var pad = model.Config.PadTokenId ?? 0;
        long[] shortPrompt = [5, 17, 42], longPrompt = [9, 3, 77, 21, 64];
        var batch = torch.tensor(new long[] { pad, pad, 5, 17, 42, 9, 3, 77, 21, 64 }, [2, 5]);
        var mask = torch.tensor(new long[] { 0, 0, 1, 1, 1, 1, 1, 1, 1, 1 }, [2, 5]);

        var together = Generation.Greedy(model, model.Config, batch, mask, maxNewTokens: 6);
        var shortAlone = Generation.Greedy(model, model.Config, torch.tensor(shortPrompt, [1, 3]), null, maxNewTokens: 6);
        var longAlone = Generation.Greedy(model, model.Config, torch.tensor(longPrompt, [1, 5]), null, maxNewTokens: 6);

        Assert.Equal(shortAlone[0, 3..].data<long>().ToArray(), together[0, 5..].data<long>().ToArray());
        Assert.Equal(longAlone[0, 5..].data<long>().ToArray(), together[1, 5..].data<long>().ToArray());
    }
}
