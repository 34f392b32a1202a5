using Peft.Methods.Lora;
using Peft.Modeling;
using Peft.Tests.Checkpoints;
using TorchSharp;

namespace Peft.Tests.Reliability;

/// <summary>
/// Saves two different adapters (other rank, other alpha, other weights) into one folder in turn,
/// forever, after writing a reference copy of each; the test kills it at random moments.
/// </summary>
internal static class SaveWorker
{
    public const string Ready = "ready";
    public const string First = "reference-a";
    public const string Second = "reference-b";
    public const string Target = "adapter";

    public static int Run(string modelDirectory, string output)
    {
        var first = Adapter(modelDirectory, rank: 2, alpha: 4, seed: 1);
        var second = Adapter(modelDirectory, rank: 4, alpha: 16, seed: 2);
        first.SavePretrained(Path.Combine(output, First));
        second.SavePretrained(Path.Combine(output, Second));
        Console.WriteLine(Ready);
        for (long i = 0; ; i++)
        {
            (i % 2 == 0 ? first : second).SavePretrained(Path.Combine(output, Target));
            Console.WriteLine($"saved {i}");
        }
    }

    internal static PeftModel Adapter(string modelDirectory, int rank, int alpha, long seed)
    {
        var model = PeftModels.Default.LoadPretrained(modelDirectory, TaskType.CausalLM);
        torch.manual_seed(seed);
        return PeftModels.Default.GetPeftModel(model, new LoraConfig
        {
            R = rank,
            LoraAlpha = alpha,
            InitLoraWeights = System.Text.Json.JsonSerializer.SerializeToElement("gaussian"),
        });
    }
}
