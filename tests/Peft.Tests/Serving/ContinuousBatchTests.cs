using Peft.Methods.Lora;
using Peft.Modeling;
using Peft.Serving;
using Peft.Tests.Checkpoints;
using Peft.Tuners;
using TorchSharp;
using static TorchSharp.torch;

namespace Peft.Tests.Serving;

/// <summary>
/// Continuous batching: rows that join a decoding batch between its steps (prompts of other lengths, other adapters,
/// other options) and rows that leave it decode exactly as each row does alone.
/// </summary>
public class ContinuousBatchTests
{
    private static readonly int[][] Prompts = [[5, 17, 42, 9], [3, 88], [21, 60, 7, 7, 100, 2], [64], [33, 12, 90]];

    public static TheoryData<string> Fixtures => new() { "gpt2-clm", "llama-clm" };

    [Theory]
    [MemberData(nameof(Fixtures))]
    public void RowsJoiningAndLeavingBetweenStepsDecodeAsTheyWouldAlone(string fixture)
    {
        using var scope = torch.NewDisposeScope();
        var peft = TwoLoras(fixture);
        string[] adapters = ["a", "b", PeftModel.BaseModelName, "a", "b"];
        GenerationOptions[] options =
        [
            new() { MaxNewTokens = 9 },
            new() { MaxNewTokens = 4 },
            new() { MaxNewTokens = 7, DoSample = true, Temperature = 1.3, Seed = 3 },
            new() { MaxNewTokens = 1 },   // ends with its first token, at the join
            new() { MaxNewTokens = 6 },
        ];
        var alone = Enumerable.Range(0, Prompts.Length).Select(i =>
            peft.Generate(torch.tensor(Prompts[i].Select(t => (long)t).ToArray(), [1, Prompts[i].Length]), null, [adapters[i]], [options[i]])).ToList();

        using var batch = new ContinuousBatch(peft);
        var tokens = new Dictionary<int, List<long>>();
        var reasons = new Dictionary<int, FinishReason>();
        void Record(IEnumerable<RowToken> step)
        {
            foreach (var t in step)
            {
                if (t.Token is { } token) (tokens.TryGetValue(t.Row, out var list) ? list : tokens[t.Row] = []).Add(token);
                if (t.Finished is { } reason) reasons[t.Row] = reason;
            }
        }
        Record(batch.Join([Row(0)]));
        Record(batch.Step());
        Record(batch.Step());
        Record(batch.Join([Row(1), Row(2)]));     // a shorter and a longer prompt than the running row's cache
        Record(batch.Step());
        Record(batch.Join([Row(3), Row(4)]));
        while (batch.Count > 0) Record(batch.Step());

        Assert.Equal(Prompts.Length, reasons.Count);
        for (int i = 0; i < Prompts.Length; i++)
        {
            Assert.Equal(alone[i].Tokens[0], tokens[i]);
            Assert.Equal(alone[i].FinishReasons[0], reasons[i]);
        }

        ContinuousRow Row(int i) => new(Prompts[i], adapters[i], options[i]);
    }

    [Fact]
    public void ACancelledRowLeavesAndTheOthersGoOn()
    {
        using var scope = torch.NewDisposeScope();
        var peft = TwoLoras("gpt2-clm");
        var options = new GenerationOptions { MaxNewTokens = 6 };
        var alone = peft.Generate(torch.tensor(new long[] { 3, 88 }, [1, 2]), null, ["b"], [options]);

        using var batch = new ContinuousBatch(peft);
        var first = batch.Join([new ContinuousRow(Prompts[0], "a", options), new ContinuousRow(Prompts[1], "b", options)]);
        var tokens = new List<long> { first[1].Token!.Value };
        Assert.Equal(new RowToken(first[0].Row, null, FinishReason.Cancelled), batch.Cancel(first[0].Row));
        Assert.Null(batch.Cancel(first[0].Row));
        Assert.Equal(1, batch.Count);
        while (batch.Count > 0) tokens.AddRange(batch.Step().Select(t => t.Token!.Value));
        Assert.Equal(alone.Tokens[0], tokens);
    }

    [Fact]
    public void EncoderDecoderModelsAreRefused()
    {
        using var scope = torch.NewDisposeScope();
        var model = PeftModels.Default.LoadPretrained(Checkpoints.Fixtures.Path("models", "t5-s2s"), TaskType.Seq2SeqLM);
        var peft = PeftModels.Default.GetPeftModel(model, new LoraConfig { R = 2, TargetModules = TargetModules.FromNames(["q"]) });
        Assert.Throws<NotSupportedException>(() => new ContinuousBatch(peft));
    }

    private static PeftModel TwoLoras(string fixture)
    {
        torch.manual_seed(7);
        var model = PeftModels.Default.LoadPretrained(Checkpoints.Fixtures.Path("models", fixture), TaskType.CausalLM);
        var targets = fixture == "gpt2-clm" ? new[] { "c_attn", "c_fc" } : new[] { "q_proj", "v_proj", "down_proj" };
        LoraConfig Lora(int rank) => new() { TaskType = TaskType.CausalLM, R = rank, LoraAlpha = 2 * rank, TargetModules = TargetModules.FromNames(targets), InitLoraWeights = false };
        var peft = PeftModels.Default.GetPeftModel(model, Lora(4), "a");
        peft.AddAdapter("b", Lora(2));
        peft.eval();
        return peft;
    }
}
