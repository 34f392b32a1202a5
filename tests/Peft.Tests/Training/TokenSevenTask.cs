using Peft.Methods.Lora;
using Peft.Modeling;
using Peft.Tests.Checkpoints;
using TorchSharp;

namespace Peft.Tests.Training;

/// <summary>
/// The trainer tests' task: sequences of 8 token ids whose label is whether token 7 occurs (learnable, deterministic),
/// classified by the tiny GPT-2 with a LoRA adapter and the score head saved.
/// </summary>
internal static class TokenSevenTask
{
    /// <summary>The tiny GPT-2 sequence classifier.</summary>
    public static readonly string Model = Fixtures.Path("models", "gpt2-seqcls");

    /// <summary><paramref name="count"/> examples drawn with <paramref name="seed"/>.</summary>
    public static List<(long[] Ids, long Label)> Data(int count, int seed)
    {
        var random = new Random(seed);
        return Enumerable.Range(0, count).Select(_ =>
        {
            var ids = Enumerable.Range(0, 8).Select(_ => (long)random.Next(1, 128)).ToArray();
            return (ids, ids.Contains(7) ? 1L : 0L);
        }).ToList();
    }

    /// <summary>A batch of examples as model inputs (no padding: every mask entry is 1).</summary>
    public static ModelInputs Collate(IReadOnlyList<(long[] Ids, long Label)> batch) => new()
    {
        InputIds = torch.tensor(batch.SelectMany(b => b.Ids).ToArray(), [batch.Count, 8]),
        AttentionMask = torch.ones(batch.Count, 8, torch.int64),
        Labels = torch.tensor(batch.Select(b => b.Label).ToArray()),
    };

    /// <summary>The classifier with a fresh LoRA adapter (r 4, α 8, score saved) drawn from <paramref name="seed"/>.</summary>
    public static PeftModel FreshLora(int seed = 1234, double loraDropout = 0)
    {
        torch.manual_seed(seed);
        var model = PeftModels.Default.LoadPretrained(Model, TaskType.SequenceClassification);
        return PeftModels.Default.GetPeftModel(model, new LoraConfig
        {
            R = 4, LoraAlpha = 8, LoraDropout = loraDropout, TaskType = TaskType.SequenceClassification, ModulesToSave = ["score"],
        });
    }
}
