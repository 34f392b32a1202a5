using Peft.Methods.Lora;
using TorchSharp;
using Peft.Tests.Checkpoints;
using Peft.Tuners;
using Peft.Modeling;
namespace Peft.Tests.Correctness;
public class ScratchProbe
{
    [Theory]
    [InlineData("t5-s2s", "embed_tokens", null)]
    [InlineData("t5-s2s", "shared", null)]
    [InlineData("t5-s2s", "q", "embed_tokens")]
    [InlineData("t5-s2s", "q", "shared")]
    [InlineData("t5-s2s", "q", "lm_head")]
    [InlineData("bart-s2s", "embed_tokens", null)]
    [InlineData("bart-s2s", "shared", null)]
    [InlineData("bart-s2s", "q_proj", "embed_tokens")]
    [InlineData("bart-s2s", "q_proj", "shared")]
    [InlineData("bart-s2s", "q_proj", "lm_head")]
    public void Probe(string model, string target, string? save)
    {
        var m = PeftModels.Default.LoadPretrained(Fixtures.Path("models", model), TaskType.Seq2SeqLM);
        var cfg = new LoraConfig { TaskType = TaskType.Seq2SeqLM, R = 4, LoraAlpha = 8, TargetModules = TargetModules.FromNames([target]), ModulesToSave = save is null ? null : [save] };
        var peft = PeftModels.Default.GetPeftModel(m, cfg);
        var names = string.Join(", ", peft.TrainableParameters().Select(p => p.Name).Where(n => !n.Contains(".block.") && !n.Contains(".layers.")));
        Assert.Fail(names);
    }
}
