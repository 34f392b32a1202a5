using Peft.Checkpoints;
using Peft.Modeling;
using Peft.Tests.Checkpoints;
using TorchSharp;
using static TorchSharp.torch;

namespace Peft.Tests.Backbones;

/// <summary>
/// BLOOM, OPT and GPT-Neo against the reference fixtures beyond what LoRA exercises: the module
/// tree, virtual-token embeddings and key/value prefixes as PEFT's prompt and prefix tuning hand
/// them to the model, and the KV cache.
/// </summary>
public class DecoderModelTests
{
    // gpt_neox-clm is left out here: transformers 5 renames its embed_out head at run time (see RotaryDecoderTests).
    public static TheoryData<string> Models() => ["bloom-clm", "bloom-seqcls", "opt-clm", "gpt_neo-clm", "gptj-clm", "llama-clm"];

    [Theory]
    [MemberData(nameof(Models))]
    public void ParametersAreTheCheckpointsAndTheReferenceModules(string modelName)
    {
        var model = Load(modelName);
        var ours = model.state_dict().Keys.ToHashSet();
        var checkpoint = SafeTensors.ReadHeader(Fixtures.Path("models", modelName, "model.safetensors")).Tensors.Keys.ToHashSet();
        Assert.Equal(checkpoint.Order(), ours.Order());

        var reference = File.ReadAllLines(Fixtures.Path("models", modelName, "modules.txt"))
            .Select(line => line.Split('\t')[0]).ToHashSet();
        foreach (var name in ours)
        {
            Assert.Contains(name[..name.LastIndexOf('.')], reference);
        }
    }

    public static TheoryData<string, string> PromptCases() => new()
    {
        { "bloom-clm", "bloom-clm-prompt" },
        { "bloom-seqcls", "bloom-seqcls-prompt" },
        { "opt-clm", "opt-clm-prompt" },
        { "gpt_neo-clm", "gpt_neo-clm-prompt" },
        { "gptj-clm", "gptj-clm-prompt" },
        { "gpt_neox-clm", "gpt_neox-clm-prompt" },
        { "llama-clm", "llama-clm-prompt" },
    };

    /// <summary>Prompt tuning: virtual-token embeddings before the input's, the mask extended with ones.</summary>
    [Theory]
    [MemberData(nameof(PromptCases))]
    public void VirtualTokenEmbeddingsGiveTheReferenceLogits(string modelName, string caseName)
    {
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        var (model, io, adapter) = LoadCase(modelName, caseName);
        var ids = io["input.input_ids"];
        var batch = ids.shape[0];
        var prompts = adapter["prompt_embeddings"].unsqueeze(0).expand(batch, -1, -1);
        var layout = model.PromptLayout!;
        Assert.Equal(prompts.shape[2], layout.HiddenSize);
        var inputs = new ModelInputs
        {
            InputsEmbeds = torch.cat([prompts, model.InputEmbeddings.call(ids)], dim: 1),
            AttentionMask = WithVirtualTokens(io["input.attention_mask"], prompts.shape[1]),
        };
        AssertClose(io["output.peft_logits"], model.call(inputs).Logits);
    }

    public static TheoryData<string, string> PrefixCases() => new()
    {
        { "bloom-clm", "bloom-clm-prefix" },
        { "bloom-seqcls", "bloom-seqcls-prefix" },
        { "opt-clm", "opt-clm-prefix" },
        { "gpt_neo-clm", "gpt_neo-clm-prefix" },
        { "gptj-clm", "gptj-clm-prefix" },
        { "gpt_neox-clm", "gpt_neox-clm-prefix" },
        { "llama-clm", "llama-clm-prefix" },
    };

    /// <summary>Prefix tuning: per-layer keys and values (B, H, P, D) as the initial cache, the mask extended with ones.</summary>
    [Theory]
    [MemberData(nameof(PrefixCases))]
    public void KeyValuePrefixesGiveTheReferenceLogits(string modelName, string caseName)
    {
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        var (model, io, adapter) = LoadCase(modelName, caseName);
        var ids = io["input.input_ids"];
        var batch = ids.shape[0];
        var layout = model.PromptLayout!;
        var embedding = adapter["prompt_embeddings"];                            // (P, L·2·H·D)
        var virtualTokens = embedding.shape[0];
        // PEFT: view (B, P, 2L, H, D), permute to (2L, B, H, P, D); layer i's key is 2i, its value 2i + 1.
        var past = embedding.unsqueeze(0).expand(batch, -1, -1)
            .view(batch, virtualTokens, 2 * layout.LayerCount, layout.AttentionHeads, layout.HeadDim)
            .permute(2, 0, 3, 1, 4);
        var layers = Enumerable.Range(0, layout.LayerCount).Select(i => (past[2 * i].contiguous(), past[2 * i + 1].contiguous())).ToList();
        using var cache = new KeyValueCache(layers);
        var inputs = new ModelInputs
        {
            InputIds = ids,
            AttentionMask = WithVirtualTokens(io["input.attention_mask"], virtualTokens),
            PastKeyValues = cache,
        };
        AssertClose(io["output.peft_logits"], model.call(inputs).Logits);
    }

    public static TheoryData<string> CausalModels() => ["bloom-clm", "opt-clm", "gpt_neo-clm", "gptj-clm", "gpt_neox-clm", "llama-clm"];

    /// <summary>Running a padded batch in two pieces through the cache gives the logits of one full pass.</summary>
    [Theory]
    [MemberData(nameof(CausalModels))]
    public void CachedStepsEqualOneFullPass(string modelName)
    {
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        var model = Load(modelName);
        var io = SafeTensors.Load(Fixtures.Path("cases", modelName + "-lora", "io.safetensors"));
        var ids = io["input.input_ids"];
        var mask = io["input.attention_mask"];
        var full = model.call(new ModelInputs { InputIds = ids, AttentionMask = mask }).Logits;

        var split = 5;
        var first = model.call(new ModelInputs { InputIds = ids[.., ..split], AttentionMask = mask[.., ..split], UseCache = true });
        using var cache = first.PastKeyValues!;
        Assert.Equal(split, cache.Length);
        var second = model.call(new ModelInputs { InputIds = ids[.., split..], AttentionMask = mask, PastKeyValues = cache, UseCache = true });
        Assert.Equal(ids.shape[1], cache.Length);
        AssertClose(full, torch.cat([first.Logits, second.Logits], dim: 1));
    }

    public static TheoryData<string, string> Heads() => new()
    {
        { "bloom-clm", "SEQ_CLS" },
        { "bloom-clm", "TOKEN_CLS" },
        { "opt-clm", "SEQ_CLS" },
        { "gpt_neo-clm", "SEQ_CLS" },
        { "gpt_neo-clm", "TOKEN_CLS" },
        { "gptj-clm", "SEQ_CLS" },
        { "gpt_neox-clm", "SEQ_CLS" },
        { "gpt_neox-clm", "TOKEN_CLS" },
        { "llama-clm", "SEQ_CLS" },
        { "llama-clm", "TOKEN_CLS" },
    };

    /// <summary>Every classification head builds from the causal checkpoint's config and computes a loss.</summary>
    [Theory]
    [MemberData(nameof(Heads))]
    public void ClassificationHeadsRun(string modelName, string task)
    {
        using var scope = torch.NewDisposeScope();
        var model = PeftModels.Default.LoadPretrained(Fixtures.Path("models", modelName), new TaskType(task));
        // Without pad_token_id (these configs have none or it is unused) a sequence classifier takes one row at a time, as the reference.
        var sequence = task == "SEQ_CLS";
        var ids = torch.tensor(new long[] { 5, 9, 3, 7, 6, 4, 2, 8 }, sequence ? [1, 8] : [2, 4]);
        var labels = sequence ? torch.tensor(new long[] { 1 }) : torch.tensor(new long[] { 0, 1, 1, -100, 1, 0, 0, 1 }, [2, 4]);
        var output = model.call(new ModelInputs { InputIds = ids, Labels = labels });
        Assert.Equal(sequence ? [1L, 2] : [2L, 4, 2], output.Logits.shape);
        Assert.True(float.IsFinite(output.Loss!.item<float>()));
    }

    private static PreTrainedModel Load(string modelName)
    {
        var task = modelName.EndsWith("-seqcls", StringComparison.Ordinal) ? TaskType.SequenceClassification : TaskType.CausalLM;
        return PeftModels.Default.LoadPretrained(Fixtures.Path("models", modelName), task);
    }

    private static (PreTrainedModel Model, Dictionary<string, Tensor> Io, Dictionary<string, Tensor> Adapter) LoadCase(string modelName, string caseName)
    {
        var model = Load(modelName);
        var io = SafeTensors.Load(Fixtures.Path("cases", caseName, "io.safetensors"));
        var adapter = SafeTensors.Load(Fixtures.Path("cases", caseName, "adapter", "adapter_model.safetensors"));
        // A classification head trained with the prompt is saved beside it (modules_to_save).
        foreach (var (key, value) in adapter.Where(kv => kv.Key.StartsWith("base_model.", StringComparison.Ordinal)))
        {
            model.state_dict()[key["base_model.".Length..]].copy_(value);
        }
        return (model, io, adapter);
    }

    private static Tensor WithVirtualTokens(Tensor mask, long virtualTokens) =>
        torch.cat([torch.ones(mask.shape[0], virtualTokens, mask.dtype), mask], dim: 1);

    private static void AssertClose(Tensor expected, Tensor actual)
    {
        Assert.Equal(expected.shape, actual.shape);
        var difference = (expected.to(ScalarType.Float64) - actual.to(ScalarType.Float64)).abs().max().item<double>();
        var bound = 1e-5 + 1e-5 * expected.abs().max().to(ScalarType.Float64).item<double>();
        Assert.True(difference <= bound, $"max |diff| {difference:E2} > {bound:E2}");
    }
}
