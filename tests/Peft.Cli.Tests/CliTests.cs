namespace Peft.Cli.Tests;

/// <summary>The <c>peft</c> command end to end (parsing, host, command, exit code) on the reference fixtures.</summary>
[Collection("cli")]
public sealed class CliTests
{
    private static string Gpt2 => TestFiles.Fixture("models", "gpt2-clm");

    [Fact]
    public async Task EachCommandHasItsOwnHelp()
    {
        var merge = await CliRun.Of("merge", "--help");
        Assert.Equal(0, merge.ExitCode);
        Assert.Contains("--output", merge.Output);
        Assert.DoesNotContain("--epochs", merge.Output);

        var finetune = await CliRun.Of("finetune", "--help");
        Assert.Contains("--epochs", finetune.Output);
        Assert.Contains("[default: 3]", finetune.Output);
        Assert.Contains("fail|skip", finetune.Output);

        var root = await CliRun.Of("--help");
        foreach (var command in new[] { "finetune", "evaluate", "predict", "generate", "merge", "inspect", "serve" }) Assert.Contains(command, root.Output);
    }

    [Fact]
    public async Task VersionIsPrinted()
    {
        var run = await CliRun.Of("--version");
        Assert.Equal(0, run.ExitCode);
        Assert.StartsWith("0.1.0", run.Output.Trim());
    }

    [Theory]
    [InlineData("--epochs", "abc", "--epochs")]
    [InlineData("--on-bad-line", "ignore", "--on-bad-line")]
    [InlineData("--model", "/no/such/model", "--model")]
    [InlineData("--data", "/no/such/data.jsonl", "--data")]
    public async Task BadFinetuneValuesAreOneLineAndExitCode2(string option, string value, string named)
    {
        var run = await CliRun.Of("finetune", option, value);
        Assert.Contains(named, run.AssertUserError());
    }

    [Theory]
    [InlineData("gpt2-clm", "GPT2LMHeadModel (gpt2, CAUSAL_LM)", "bfloat16", "BFloat16", "true")]
    [InlineData("t5-s2s", "T5ForConditionalGeneration (t5, SEQ_2_SEQ_LM)", "float32", "Float32", "false")]
    public async Task InspectWithoutAnAdapterDescribesTheBaseModel(string model, string header, string dtype, string shown, string lowMemory)
    {
        var run = await CliRun.Of("inspect", "--model", TestFiles.Fixture("models", model), "--dtype", dtype, "--low-cpu-memory-usage", lowMemory);
        Assert.Equal(0, run.ExitCode);
        Assert.Contains(header, run.Console);
        // The reference's count of the base model (a tied weight counted once): its LoRA case's "all params" less the adapter's.
        using var meta = System.Text.Json.JsonDocument.Parse(File.ReadAllText(TestFiles.Fixture("cases", model + "-lora", "meta.json")));
        var counts = System.Text.RegularExpressions.Regex.Matches(meta.RootElement.GetProperty("print_trainable_parameters").GetString()!, @"[\d,]+(?= \|\||$)");
        var expected = long.Parse(counts[1].Value.Replace(",", "", StringComparison.Ordinal), System.Globalization.CultureInfo.InvariantCulture)
            - meta.RootElement.GetProperty("trainable_params").GetInt64();
        Assert.Contains(string.Create(System.Globalization.CultureInfo.InvariantCulture, $"parameters: {expected:N0}"), run.Console);
        Assert.Matches($@"(?m)^dtype: {shown}; device: cpu\s*$", run.Console);
        Assert.Matches(@"(?m)^loaded in \d+\.\d\d s; peak memory \d+ MiB\s*$", run.Console);
    }

    [Fact]
    public async Task InspectRefusesATaskTheArchitectureHasNoHeadFor()
    {
        var run = await CliRun.Of("inspect", "--model", Gpt2, "--task", "SEQ_2_SEQ_LM");
        Assert.Equal("peft inspect: --task: gpt2 has no head for SEQ_2_SEQ_LM; supported: CAUSAL_LM, SEQ_CLS, TOKEN_CLS.", run.AssertUserError());
    }

    [Fact]
    public async Task InspectShowsARealAdaptersShapes()
    {
        var adapter = TestFiles.Fixture("cases", "gpt2-clm-lora", "adapter");
        var run = await CliRun.Of("inspect", "--adapter", adapter, "--model", Gpt2);
        Assert.Equal(0, run.ExitCode);
        Assert.Contains("LORA", run.Console);
        Assert.Contains("lora_A.weight", run.Console);
        Assert.Matches(@"\[\d+, \d+\]", run.Console);
        // Each tensor on one line of the 80-column console, its value count included.
        Assert.Matches(@"(?m)^base_model\.model\.transformer\.h\.0\.attn\.c_attn\.lora_A\.weight +F32 +\[4, 32\] +128\s*$", run.Console);
        Assert.Contains("trainable params", run.Console);
        Assert.Matches(@"(?m)^base model: Float32 loaded in \d+\.\d\d s; peak memory \d+ MiB\s*$", run.Console);
    }

    [Fact]
    public async Task RunsAtTheSameTimeKeepTheLibrarysWarningsOnTheirOwnConsole()
    {
        // Each host used to make itself the global sink of PeftLog, so a run's warning could print on whichever console was built last.
        var root = Directory.CreateTempSubdirectory("peft-warnings-").FullName;
        try
        {
            var adapters = Enumerable.Range(0, 12).Select(i =>
            {
                var adapter = Path.Combine(root, $"adapter{i}");
                Directory.CreateDirectory(adapter);
                var source = TestFiles.Fixture("cases", "gpt2-clm-lora", "adapter");
                File.Copy(Path.Combine(source, "adapter_model.safetensors"), Path.Combine(adapter, "adapter_model.safetensors"));
                var config = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(Path.Combine(source, "adapter_config.json")))!.AsObject();
                config[$"unknown_key_{i}"] = i;
                File.WriteAllText(Path.Combine(adapter, "adapter_config.json"), config.ToJsonString());
                return adapter;
            }).ToList();

            var runs = await Task.WhenAll(adapters.Select(a => Task.Run(() => CliRun.Of("inspect", "--adapter", a))));

            for (int i = 0; i < runs.Length; i++)
            {
                Assert.Equal(0, runs[i].ExitCode);
                var console = runs[i].Console.ReplaceLineEndings("");
                for (int j = 0; j < runs.Length; j++)
                {
                    if (i == j) Assert.Contains($"`unknown_key_{j}`", console);
                    else Assert.DoesNotContain($"`unknown_key_{j}`", console);
                }
            }
        }
        finally
        {
            Directory.Delete(root, recursive: true);
        }
    }

    [Fact]
    public async Task InspectOfAMissingAdapterNamesIt()
    {
        var run = await CliRun.Of("inspect", "--adapter", "/no/such/adapter");
        Assert.Contains("--adapter", run.AssertUserError());
    }

    [Fact]
    public async Task ServeRefusesBadAdaptersAndValuesByName()
    {
        var notPair = await CliRun.Of("serve", "--model", Gpt2, "--adapter", "just-a-dir");
        Assert.Contains("name=DIR", notPair.AssertUserError());
        var missing = await CliRun.Of("serve", "--model", Gpt2, "--adapter", "x=/no/such/adapter");
        Assert.Contains("--adapter", missing.AssertUserError());
        var family = await CliRun.Of("serve", "--model", Gpt2, "--adapter", "x=" + TestFiles.Fixture("cases", "gpt2-clm-lora", "adapter"), "--chat-template", "jinja");
        Assert.Contains("--chat-template", family.AssertUserError());
        // Bare `peft serve` before the default job has run says what to do (the test runs where no peft-output is).
        Assert.False(Directory.Exists("peft-output"));
        Assert.Contains("peft finetune", (await CliRun.Of("serve")).AssertUserError());
    }

    [Fact]
    public async Task MergeOfAPromptTuningAdapterIsRefused()
    {
        var scratch = Directory.CreateTempSubdirectory("peft-merge-");
        try
        {
            var run = await CliRun.Of("merge", "--model", Gpt2, "--adapter", TestFiles.Fixture("cases", "gpt2-clm-prompt", "adapter"), "--output", scratch.FullName);
            Assert.Contains("PROMPT_TUNING", run.AssertUserError());
        }
        finally
        {
            scratch.Delete(recursive: true);
        }
    }

    [Fact]
    public async Task MergeOfAnAdapterWithNaNIsAOneLineErrorAndWritesNoModel()
    {
        var scratch = Directory.CreateTempSubdirectory("peft-merge-");
        try
        {
            var adapter = Path.Combine(scratch.FullName, "nan-adapter");
            Directory.CreateDirectory(adapter);
            var source = TestFiles.Fixture("cases", "gpt2-clm-lora", "adapter");
            File.Copy(Path.Combine(source, "adapter_config.json"), Path.Combine(adapter, "adapter_config.json"));
            var weights = Peft.Checkpoints.SafeTensors.Load(Path.Combine(source, "adapter_model.safetensors"));
            foreach (var tensor in weights.Values) tensor.fill_(float.NaN);
            Peft.Checkpoints.SafeTensors.Save(Path.Combine(adapter, "adapter_model.safetensors"), weights);

            var output = Path.Combine(scratch.FullName, "merged");
            var run = await CliRun.Of("merge", "--model", Gpt2, "--adapter", adapter, "--output", output);
            Assert.Contains("'default' seems to be broken", run.AssertUserError());
            Assert.False(Directory.Exists(output));
        }
        finally
        {
            scratch.Delete(recursive: true);
        }
    }

    [Fact]
    public async Task MergeWritesAModelThatGenerates()
    {
        var scratch = Directory.CreateTempSubdirectory("peft-merge-");
        try
        {
            var merged = Path.Combine(scratch.FullName, "merged");
            var adapter = TestFiles.Fixture("cases", "gpt2-clm-lora", "adapter");
            var merge = await CliRun.Of("merge", "--model", Gpt2, "--adapter", adapter, "--output", merged);
            Assert.Equal(0, merge.ExitCode);
            // The log line is time, level, message: no category name and no (hashed) event id, as Microsoft's console logger writes.
            Assert.Matches(@"(?m)^\d\d:\d\d:\d\d info Merged ", merge.Console);
            Assert.DoesNotContain("MergeCommand", merge.Console);
            Assert.DoesNotContain("[", merge.Console);
            var fromMerged = await CliRun.Of("generate", "--model", merged, "--prompt", "1 2 3", "--max-new-tokens", "5");
            var withAdapter = await CliRun.Of("generate", "--model", Gpt2, "--adapter", adapter, "--prompt", "1 2 3", "--max-new-tokens", "5");
            Assert.Equal(0, fromMerged.ExitCode);
            // The ids are the last line; a logged warning (the adapter's fan_in_fan_out, once per process) may precede them.
            static string Ids(string console) => console.TrimEnd().Split('\n')[^1];
            Assert.Equal(Ids(withAdapter.Console), Ids(fromMerged.Console));
            Assert.StartsWith("1 2 3 ", Ids(fromMerged.Console));
        }
        finally
        {
            scratch.Delete(recursive: true);
        }
    }

    [Fact]
    public async Task GenerateRefusesATokenIdPastTheVocabulary()
    {
        var run = await CliRun.Of("generate", "--model", Gpt2, "--prompt", "1 99999");
        var line = run.AssertUserError();
        Assert.Contains("--prompt", line);
        Assert.Contains("99999", line);
    }

    [Fact]
    public async Task GenerateRunsAnEncoderDecoder()
    {
        var run = await CliRun.Of("generate", "--model", TestFiles.Fixture("models", "t5-s2s"), "--prompt", "5 6 7", "--max-new-tokens", "3");
        Assert.Equal(0, run.ExitCode);
        // The ids are the last line; a once-per-process warning may precede them, depending on test order.
        Assert.Matches(@"^\d+( \d+)+$", run.Console.TrimEnd().Split('\n')[^1]);
    }

    [Fact]
    public async Task GenerateSamplesReproduciblyWithASeed()
    {
        string[] sample = ["generate", "--model", Gpt2, "--prompt", "1 2 3", "--max-new-tokens", "8", "--do-sample", "true", "--temperature", "50", "--top-k", "0", "--seed", "7"];
        static string Ids(CliRun run) => run.Console.TrimEnd().Split('\n')[^1];
        var first = await CliRun.Of(sample);
        var again = await CliRun.Of(sample);
        var greedy = await CliRun.Of("generate", "--model", Gpt2, "--prompt", "1 2 3", "--max-new-tokens", "8");
        Assert.Equal(0, first.ExitCode);
        Assert.Equal(Ids(first), Ids(again));
        Assert.NotEqual(Ids(greedy), Ids(first));
        Assert.StartsWith("1 2 3 ", Ids(first));
    }

    [Fact]
    public async Task GenerateTakesItsDefaultsFromGenerationConfigJson()
    {
        var scratch = Directory.CreateTempSubdirectory("peft-genconfig-");
        try
        {
            var model = Path.Combine(scratch.FullName, "gpt2");
            Directory.CreateDirectory(model);
            foreach (var file in Directory.GetFiles(Gpt2)) File.Copy(file, Path.Combine(model, Path.GetFileName(file)));
            File.WriteAllText(Path.Combine(model, "generation_config.json"), """{"do_sample": true, "temperature": 50, "top_k": 0, "max_new_tokens": 8}""");
            static string Ids(CliRun run) => run.Console.TrimEnd().Split('\n')[^1];

            var fromFile = await CliRun.Of("generate", "--model", model, "--prompt", "1 2 3", "--seed", "7");
            var explicitly = await CliRun.Of("generate", "--model", Gpt2, "--prompt", "1 2 3", "--max-new-tokens", "8", "--do-sample", "true", "--temperature", "50", "--top-k", "0", "--seed", "7");
            var greedy = await CliRun.Of("generate", "--model", model, "--prompt", "1 2 3", "--do-sample", "false");
            Assert.Equal(0, fromFile.ExitCode);
            Assert.Equal(Ids(explicitly), Ids(fromFile));
            Assert.Equal(Ids(await CliRun.Of("generate", "--model", Gpt2, "--prompt", "1 2 3", "--max-new-tokens", "8")), Ids(greedy));
            Assert.Equal(3 + 8, Ids(greedy).Split(' ').Length);

            File.WriteAllText(Path.Combine(model, "generation_config.json"), """{"do_sample": true, "top_p": 0}""");
            Assert.Contains("generation_config.json: top_p must be in (0, 1]", (await CliRun.Of("generate", "--model", model, "--prompt", "1 2 3")).AssertUserError());
        }
        finally
        {
            scratch.Delete(recursive: true);
        }
    }

    [Fact]
    public async Task SamplingOptionsWithoutDoSampleAreRefusedByName()
    {
        var line = (await CliRun.Of("generate", "--model", Gpt2, "--prompt", "1 2 3", "--temperature", "0.7")).AssertUserError();
        Assert.Contains("--temperature", line);
        Assert.Contains("--do-sample", line);
        Assert.Contains("--stop", (await CliRun.Of("generate", "--model", Gpt2, "--prompt", "1 2 3", "--stop", "x")).AssertUserError());
    }

    [Fact]
    public async Task GenerateWithAClassificationModelNamesTheModel()
    {
        var run = await CliRun.Of("generate", "--model", TestFiles.Fixture("models", "bert-seqcls"), "--prompt", "5 6 7");
        Assert.Contains("--model", run.AssertUserError());
    }
}
