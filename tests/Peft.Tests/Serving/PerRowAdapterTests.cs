using Peft.Methods.IA3;
using Peft.Methods.LoHa;
using Peft.Methods.Lora;
using Peft.Methods.PromptTuning;
using Peft.Modeling;
using Peft.Tests.Checkpoints;
using Peft.Tuners;
using TorchSharp;
using static TorchSharp.torch;

namespace Peft.Tests.Serving;

/// <summary>
/// Per-row adapters (the reference's <c>adapter_names</c>): every row of a mixed batch equals that row run alone
/// with its adapter, in forward and in generate, on one thread or many; what cannot mix is refused.
/// </summary>
public class PerRowAdapterTests
{
    private const double Tolerance = 1e-5;   // float32 rounding of a batched vs single-row matmul
    private static Tensor Prompts => torch.tensor(new long[] { 5, 17, 42, 9, 3, 88, 21, 60, 7, 7, 100, 2, 64, 33, 12, 90, 45, 1, 77, 30 }, [5, 4]);

    /// <summary>A tiny GPT-2 with three LoRA adapters: a (c_attn, c_proj), b (c_fc and the token embedding), c (DoRA on c_attn).</summary>
    internal static PeftModel ThreeLoras(TaskType? taskType = null, string fixture = "gpt2-clm")
    {
        var task = taskType ?? TaskType.CausalLM;
        torch.manual_seed(7);
        var model = PeftModels.Default.LoadPretrained(Fixtures.Path("models", fixture), task);
        var peft = PeftModels.Default.GetPeftModel(model, Lora(["c_attn", "attn.c_proj"], 4), "a");
        peft.AddAdapter("b", Lora(["c_fc", "wte"], 2) with { TaskType = task });
        peft.AddAdapter("c", Lora(["c_attn"], 3) with { UseDora = true, TaskType = task });
        peft.eval();
        return peft;

        LoraConfig Lora(string[] targets, int rank) => new()
        {
            TaskType = task,
            R = rank,
            LoraAlpha = 2 * rank,
            TargetModules = TargetModules.FromNames(targets),
            InitLoraWeights = false,   // B random too: every adapter changes the output
        };
    }

    /// <summary>Logits of each row alone, with the model's global adapter switch (single-threaded).</summary>
    internal static Tensor Alone(PeftModel peft, Tensor ids, string adapter)
    {
        using var noGrad = torch.no_grad();
        var inputs = new ModelInputs { InputIds = ids };
        if (adapter == PeftModel.BaseModelName)
        {
            using (peft.DisableAdapter()) return peft.call(inputs).Logits.detach().clone();
        }
        peft.SetAdapter(adapter);
        return peft.call(inputs).Logits.detach().clone();
    }

    [Fact]
    public void Every_row_of_a_mixed_forward_equals_the_row_alone_with_its_adapter()
    {
        using var scope = torch.NewDisposeScope();
        var peft = ThreeLoras();
        string[] names = ["a", PeftModel.BaseModelName, "b", "a", "c"];

        Tensor mixed;
        using (torch.no_grad()) mixed = peft.Forward(new ModelInputs { InputIds = Prompts }, names).Logits;

        for (int row = 0; row < names.Length; row++)
        {
            var alone = Alone(peft, Prompts[row..(row + 1)], names[row]);
            AssertClose(alone[0], mixed[row]);
        }
        // The adapters really differ: a row with another adapter would not pass.
        Assert.True((Alone(peft, Prompts[0..1], "a") - Alone(peft, Prompts[0..1], "b")).abs().max().item<float>() > 1e-3);
    }

    [Fact]
    public void A_batch_on_one_adapter_equals_the_active_adapter_path()
    {
        using var scope = torch.NewDisposeScope();
        var peft = ThreeLoras();
        Tensor routed;
        using (torch.no_grad()) routed = peft.Forward(new ModelInputs { InputIds = Prompts }, [.. Enumerable.Repeat("b", 5)]).Logits;
        AssertClose(Alone(peft, Prompts, "b"), routed, 0);
    }

    [Fact]
    public void Ia3_rows_mix_too()
    {
        using var scope = torch.NewDisposeScope();
        torch.manual_seed(3);
        var model = PeftModels.Default.LoadPretrained(Fixtures.Path("models", "llama-clm"), TaskType.CausalLM);
        var ia3 = new IA3Config
        {
            TaskType = TaskType.CausalLM,
            TargetModules = TargetModules.FromNames(["k_proj", "v_proj", "down_proj"]),
            FeedforwardModules = TargetModules.FromNames(["down_proj"]),
            InitIA3Weights = false,
        };
        var peft = PeftModels.Default.GetPeftModel(model, ia3, "x");
        peft.AddAdapter("y", ia3 with { TargetModules = TargetModules.FromNames(["v_proj", "down_proj"]) });
        peft.eval();
        var ids = torch.tensor(new long[] { 5, 17, 42, 9, 3, 8, 21, 60, 7, 7, 10, 2 }, [3, 4]);
        string[] names = ["y", "x", PeftModel.BaseModelName];

        Tensor mixed;
        using (torch.no_grad()) mixed = peft.Forward(new ModelInputs { InputIds = ids }, names).Logits;

        for (int row = 0; row < names.Length; row++) AssertClose(Alone(peft, ids[row..(row + 1)], names[row])[0], mixed[row]);
    }

    [Fact]
    public void Classification_heads_saved_per_adapter_are_routed_per_row()
    {
        using var scope = torch.NewDisposeScope();
        var peft = ThreeLoras(TaskType.SequenceClassification, "gpt2-seqcls");
        // Each adapter has its own trained copy of the head (modules_to_save): make them differ.
        using (torch.no_grad())
        {
            foreach (var (name, parameter) in peft.named_parameters().Where(p => p.name.Contains("modules_to_save.b.")))
            {
                parameter.add_(torch.randn_like(parameter));
            }
        }
        string[] names = ["b", "a", PeftModel.BaseModelName, "b", "c"];

        Tensor mixed;
        using (torch.no_grad()) mixed = peft.Forward(new ModelInputs { InputIds = Prompts }, names).Logits;

        for (int row = 0; row < names.Length; row++) AssertClose(Alone(peft, Prompts[row..(row + 1)], names[row])[0], mixed[row]);
    }

    [Fact]
    public void Mixed_greedy_and_sampled_generation_gives_each_row_its_own_output()
    {
        using var scope = torch.NewDisposeScope();
        var peft = ThreeLoras();
        string[] names = ["c", "a", PeftModel.BaseModelName, "b", "a"];
        // The fixture's eos id (50256) lies outside its 128-token vocabulary, so finished rows are padded with 0 instead.
        var none = new GenerationOptions { EosTokenIds = [] };
        GenerationOptions[] options =
        [
            none with { MaxNewTokens = 6 },
            none with { MaxNewTokens = 8, DoSample = true, Temperature = 1.5, TopK = 0, Seed = 11 },
            none with { MaxNewTokens = 3 },
            none with { MaxNewTokens = 8, StopTokenIds = [SecondGreedyToken(peft, 3, "b")] },
            none with { MaxNewTokens = 8, DoSample = true, TopP = 0.9, Seed = 5 },
        ];

        var batch = peft.Generate(Prompts, null, names, options);

        for (int row = 0; row < names.Length; row++)
        {
            var alone = peft.Generate(Prompts[row..(row + 1)], null, [names[row]], [options[row]]);
            Assert.Equal(alone.Tokens[0], batch.Tokens[row]);
            Assert.Equal(alone.FinishReasons[0], batch.FinishReasons[row]);
        }
        Assert.Equal([6, 8, 3, 2, 8], batch.Tokens.Select(t => t.Length));
        Assert.Equal(FinishReason.Stop, batch.FinishReasons[3]);
        Assert.Equal(FinishReason.Length, batch.FinishReasons[2]);
    }

    [Fact]
    public void Routed_greedy_alone_equals_the_global_adapter_generate()
    {
        using var scope = torch.NewDisposeScope();
        var peft = ThreeLoras();
        peft.SetAdapter("b");
        var global = peft.Generate(Prompts[1..2], maxNewTokens: 7)[0, 4..].data<long>().ToArray();
        peft.SetAdapter("a");   // the routed call must not care which adapter is active

        var routed = peft.Generate(Prompts[1..2], null, ["b"], [new GenerationOptions { MaxNewTokens = 7 }]);

        Assert.Equal(global, routed.Tokens[0]);
    }

    [Fact]
    public void Left_padded_prompts_of_different_lengths_generate_as_alone()
    {
        using var scope = torch.NewDisposeScope();
        var peft = ThreeLoras();
        var ids = torch.tensor(new long[] { 0, 0, 5, 17, 42, 9, 3, 88 }, [2, 4]);
        var mask = torch.tensor(new long[] { 0, 0, 1, 1, 1, 1, 1, 1 }, [2, 4]);

        var batch = peft.Generate(ids, mask, ["a", "b"], [new GenerationOptions { MaxNewTokens = 5 }]);

        Assert.Equal(peft.Generate(ids[0..1, 2..], null, ["a"]).Tokens[0][..5], batch.Tokens[0]);
        Assert.Equal(peft.Generate(ids[1..2], null, ["b"]).Tokens[0][..5], batch.Tokens[1]);
    }

    [Fact]
    public async Task Concurrent_mixed_calls_on_one_model_each_get_their_own_adapters()
    {
        var peft = ThreeLoras();
        string[] adapters = ["a", "b", PeftModel.BaseModelName];
        var expected = new Dictionary<(int, string), float[]>();
        for (int row = 0; row < 5; row++)
        {
            foreach (var adapter in adapters) expected[(row, adapter)] = Alone(peft, Prompts[row..(row + 1)], adapter)[0].data<float>().ToArray();
        }
        var errors = new System.Collections.Concurrent.ConcurrentBag<string>();
        var checkedRows = 0;
        // One thread keeps flipping the global adapter: routed calls must not notice.
        using var stop = new CancellationTokenSource();
        var flipper = Task.Run(() =>
        {
            while (!stop.IsCancellationRequested) peft.SetAdapter(Random.Shared.Next(2) == 0 ? "a" : "c");
        });

        Parallel.For(0, 8, new ParallelOptions { MaxDegreeOfParallelism = 8 }, worker =>
        {
            var random = new Random(worker);
            for (int call = 0; call < 6; call++)
            {
                using var scope = torch.NewDisposeScope();
                using var noGrad = torch.no_grad();
                var rows = Enumerable.Range(0, 1 + random.Next(5)).Select(_ => random.Next(5)).ToArray();
                var names = rows.Select(_ => adapters[random.Next(adapters.Length)]).ToArray();
                var ids = Prompts.index_select(0, torch.tensor(rows.Select(r => (long)r).ToArray()));
                var logits = peft.Forward(new ModelInputs { InputIds = ids }, names).Logits;
                for (int i = 0; i < rows.Length; i++)
                {
                    var got = logits[i].data<float>().ToArray();
                    var want = expected[(rows[i], names[i])];
                    var gap = got.Zip(want, (g, w) => Math.Abs(g - w)).Max();
                    if (gap > Tolerance) errors.Add($"worker {worker} call {call} row {i} ({names[i]}): off by {gap}");
                    Interlocked.Increment(ref checkedRows);
                }
            }
        });
        stop.Cancel();
        await flipper;

        Assert.Empty(errors);
        Assert.True(checkedRows >= 48);
    }

    [Fact]
    public void What_cannot_mix_is_refused_by_name()
    {
        using var scope = torch.NewDisposeScope();
        var peft = ThreeLoras();
        var inputs = new ModelInputs { InputIds = Prompts[0..2] };

        var unknown = Assert.Throws<ArgumentException>(() => peft.Forward(inputs, ["a", "nope"]));
        Assert.Contains("'nope'", unknown.Message);
        Assert.Contains("a, b, c", unknown.Message);
        Assert.Throws<ArgumentException>(() => peft.Forward(inputs, ["a"]));

        peft.SetAdapter("a");
        peft.Merge();
        var merged = Assert.Throws<NotSupportedException>(() => peft.Forward(inputs, ["a", "b"]));
        Assert.Contains("merged", merged.Message);
        peft.Unmerge();
        using (torch.no_grad()) peft.Forward(inputs, ["a", "b"]);

        var prompt = PeftModels.Default.GetPeftModel(PeftModels.Default.LoadPretrained(Fixtures.Path("models", "gpt2-clm"), TaskType.CausalLM),
            new PromptTuningConfig { TaskType = TaskType.CausalLM, NumVirtualTokens = 2 });
        Assert.Contains("prompt-learning", Assert.Throws<NotSupportedException>(() => prompt.Forward(inputs, ["default", "default"])).Message);

        var loha = PeftModels.Default.GetPeftModel(PeftModels.Default.LoadPretrained(Fixtures.Path("models", "llama-clm"), TaskType.CausalLM),
            new LoHaConfig { TaskType = TaskType.CausalLM, TargetModules = TargetModules.FromNames(["q_proj"]) });
        Assert.Contains("LoHaLayer", Assert.Throws<NotSupportedException>(() => loha.Forward(inputs, ["default", PeftModel.BaseModelName])).Message);
    }

    private static long SecondGreedyToken(PeftModel peft, int row, string adapter) =>
        peft.Generate(Prompts[row..(row + 1)], null, [adapter], [new GenerationOptions { MaxNewTokens = 2 }]).Tokens[0][1];

    private static void AssertClose(Tensor expected, Tensor actual, double tolerance = Tolerance)
    {
        var gap = (expected - actual).abs().max().item<float>();
        Assert.True(gap <= tolerance, $"max |expected - actual| = {gap} > {tolerance}");
    }
}
