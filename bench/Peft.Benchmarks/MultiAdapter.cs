// Serving many adapters in one batch (docs/SERVING.md): a batch of 8 rows through a GPT-2-shaped model
// (6 layers, hidden 384, an 8192-token vocabulary so that the head does not hide the layers' cost) with LoRA r16 on c_attn, attn.c_proj and c_fc:
//   base            the base model alone (no adapter layers)
//   lora            one unmerged LoRA, the model's active adapter (the ordinary path)
//   one-adapter     per-row routing, every row on the same adapter
//   four-adapters   per-row routing, rows spread over four adapters (2 rows each)
// for a prefill forward (8 × 32 tokens) and greedy generation of 8 tokens from 8 × 16, medians of 7 after 2 warm-up runs.
//   dotnet run --project bench/Peft.Benchmarks -c Release multi-adapter
using System.Diagnostics;
using Peft;
using Peft.Backbones.Gpt2;
using Peft.Methods.Lora;
using Peft.Modeling;
using Peft.Tuners;
using TorchSharp;
using static TorchSharp.torch;

internal static class MultiAdapter
{
    private const int Rows = 8;

    public static Dictionary<string, object> Run()
    {
        torch.manual_seed(0);
        var config = new Gpt2Config { ModelType = "gpt2", VocabSize = 8192, NEmbd = 384, NHead = 6, NLayer = 6, NPositions = 256, AttnPdrop = 0, EmbdPdrop = 0, ResidPdrop = 0 };
        var baseModel = new Gpt2Architecture().Build(config, TaskType.CausalLM);
        baseModel.eval();
        var adapted = new Gpt2Architecture().Build(config, TaskType.CausalLM);
        adapted.load_state_dict(baseModel.state_dict());
        var peft = PeftModels.Default.GetPeftModel(adapted, Lora(), "a1");
        foreach (var name in new[] { "a2", "a3", "a4" }) peft.AddAdapter(name, Lora());
        peft.eval();
        string[] one = [.. Enumerable.Repeat("a1", Rows)];
        string[] four = [.. Enumerable.Range(0, Rows).Select(i => $"a{1 + i % 4}")];
        var prefill = torch.randint(0, config.VocabSize, [Rows, 32]);
        var prompt = torch.randint(0, config.VocabSize, [Rows, 16]);
        var greedy = new GenerationOptions { MaxNewTokens = 8, EosTokenIds = [] };

        var results = new Dictionary<string, object>
        {
            ["forward_base_ms"] = Median(() => baseModel.call(new ModelInputs { InputIds = prefill })),
            ["forward_lora_ms"] = Median(() => peft.call(new ModelInputs { InputIds = prefill })),
            ["forward_one_adapter_ms"] = Median(() => peft.Forward(new ModelInputs { InputIds = prefill }, one)),
            ["forward_four_adapters_ms"] = Median(() => peft.Forward(new ModelInputs { InputIds = prefill }, four)),
            ["generate_base_ms"] = Median(() => Generation.Generate(baseModel, baseModel.Config, prompt, null, greedy)),
            ["generate_lora_ms"] = Median(() => Generation.Generate(peft, baseModel.Config, prompt, null, greedy)),
            ["generate_one_adapter_ms"] = Median(() => peft.Generate(prompt, null, one, [greedy]).Sequences),
            ["generate_four_adapters_ms"] = Median(() => peft.Generate(prompt, null, four, [greedy]).Sequences),
        };
        foreach (var phase in new[] { "forward", "generate" })
        {
            var mixed = (double)results[$"{phase}_four_adapters_ms"];
            results[$"{phase}_throughput_four_vs_one"] = Math.Round((double)results[$"{phase}_one_adapter_ms"] / mixed, 3);
            results[$"{phase}_lora_vs_base_time"] = Math.Round((double)results[$"{phase}_lora_ms"] / (double)results[$"{phase}_base_ms"], 3);
        }
        return results;
    }

    private static LoraConfig Lora() => new()
    {
        TaskType = TaskType.CausalLM,
        R = 16,
        LoraAlpha = 32,
        TargetModules = TargetModules.FromNames(["c_attn", "attn.c_proj", "c_fc"]),
        InitLoraWeights = false,
    };

    private static double Median(Func<object> run, int warm = 2, int reps = 7)
    {
        var times = new List<double>();
        for (int i = 0; i < warm + reps; i++)
        {
            using var scope = torch.NewDisposeScope();
            using var noGrad = torch.no_grad();
            var clock = Stopwatch.StartNew();
            run();
            if (i >= warm) times.Add(clock.Elapsed.TotalMilliseconds);
            Console.Error.Write('.');
        }
        times.Sort();
        return Math.Round(times[times.Count / 2], 1);
    }
}
