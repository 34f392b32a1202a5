using System.Text.Json;
using Peft.Checkpoints;
using Peft.Modeling;
using Peft.Tests.Checkpoints;
using TorchSharp;
using static TorchSharp.torch;

namespace Peft.Tests.Backbones;

/// <summary>
/// Checks of the rotary decoder backbones (GPT-J, GPT-NeoX, Llama) against the reference's fixtures
/// beyond what the conformance cases compare: module names, the KV cache, embeddings as inputs,
/// and key/value prefixes as prefix tuning hands them in.
/// </summary>
public class DecoderBackboneTests
{
    public static TheoryData<string> Models() => new() { "gptj-clm", "gpt_neox-clm", "llama-clm" };

    private static string ModelType(string model) => model[..model.LastIndexOf('-')];

    [Theory]
    [MemberData(nameof(Models))]
    public void ParametersAreTheCheckpointsKeys(string model)
    {
        using var scope = NewDisposeScope();
        var loaded = DecoderFixtures.Load(model);
        var checkpoint = ModelWeights.Load(Fixtures.Path("models", model));

        Assert.Equal(checkpoint.Keys.Order(StringComparer.Ordinal), loaded.state_dict().Keys.Order(StringComparer.Ordinal));
    }

    [Theory]
    [MemberData(nameof(Models))]
    public void LinearAndEmbeddingModulesHaveTheReferenceNames(string model)
    {
        using var scope = NewDisposeScope();
        var ours = DecoderFixtures.Load(model).named_modules()
            .Where(m => m.module is TorchSharp.Modules.Linear or TorchSharp.Modules.Embedding)
            .Select(m => m.name)
            .Order(StringComparer.Ordinal);
        // transformers 5 renames GPT-NeoX's head to lm_head at run time; its checkpoints keep embed_out.
        var reference = File.ReadAllLines(Fixtures.Path("models", model, "modules.txt"))
            .Select(line => line.Split('\t'))
            .Where(parts => parts[1] is "Linear" or "Embedding")
            .Select(parts => model == "gpt_neox-clm" && parts[0] == "lm_head" ? "embed_out" : parts[0])
            .Order(StringComparer.Ordinal);

        Assert.Equal(reference, ours);
    }

    [Theory]
    [MemberData(nameof(Models))]
    public void TheCacheGivesTheLogitsOfTheFullSequence(string model)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var inputs = DecoderFixtures.Inputs(model + "-lora");
        var ids = inputs.InputIds!;
        var mask = inputs.AttentionMask!;
        var loaded = DecoderFixtures.Load(model);
        var full = loaded.call(inputs).Logits;

        const int promptLength = 3;
        var output = loaded.call(new ModelInputs { InputIds = ids[.., ..promptLength], AttentionMask = mask[.., ..promptLength], UseCache = true });
        var steps = new List<Tensor> { output.Logits };
        using var cache = output.PastKeyValues!;
        for (long t = promptLength; t < ids.shape[1]; t++)
        {
            output = loaded.call(new ModelInputs
            {
                InputIds = ids[.., (int)t..(int)(t + 1)],
                AttentionMask = mask[.., ..(int)(t + 1)],
                PastKeyValues = cache,
                UseCache = true,
            });
            Assert.Same(cache, output.PastKeyValues);
            steps.Add(output.Logits);
        }
        var incremental = cat(steps, dim: 1);

        Assert.True(incremental.allclose(full, rtol: 0, atol: 1e-5), $"max diff {(incremental - full).abs().max().item<float>()}");
        Assert.True(full.allclose(DecoderFixtures.Io(model + "-lora")["output.base_logits"], rtol: 0, atol: 1e-5));
    }

    [Theory]
    [MemberData(nameof(Models))]
    public void EmbeddingsAsInputsGiveTheSameLogits(string model)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var inputs = DecoderFixtures.Inputs(model + "-lora");
        var loaded = DecoderFixtures.Load(model);
        var embeds = loaded.InputEmbeddings.call(inputs.InputIds!);

        var fromIds = loaded.call(inputs).Logits;
        var fromEmbeddings = loaded.call(inputs with { InputIds = null, InputsEmbeds = embeds }).Logits;

        Assert.True(fromEmbeddings.equal(fromIds).all().item<bool>());
    }

    [Theory]
    [MemberData(nameof(Models))]
    public void ExplicitPositionIdsOverrideTheCacheOffset(string model)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var inputs = DecoderFixtures.Inputs(model + "-lora");
        var loaded = DecoderFixtures.Load(model);
        var length = inputs.InputIds!.shape[1];

        var implicitPositions = loaded.call(inputs).Logits;
        var explicitPositions = loaded.call(inputs with { PositionIds = arange(length).unsqueeze(0) }).Logits;
        // Rotary attention sees only differences of positions, so spread them rather than shift them.
        var spread = loaded.call(inputs with { PositionIds = (arange(length) * 2).unsqueeze(0) }).Logits;

        Assert.True(explicitPositions.equal(implicitPositions).all().item<bool>());
        Assert.False(spread.allclose(implicitPositions, rtol: 0, atol: 1e-4), "positions should reach the rotary embedding");
    }

    /// <summary>
    /// Prefix tuning as the reference computes it: the saved prompt_embeddings (P, layers × 2 × heads × head_dim)
    /// become per-layer keys and values (B, heads, P, head_dim), with heads and head_dim from the model's
    /// PromptLayout (key/value heads for Llama's grouped-query attention), the padding mask grows by P
    /// ones, and positions continue after the prefix. The result must be the reference's peft_logits.
    /// </summary>
    [Theory]
    [MemberData(nameof(Models))]
    public void PrefixesAsAnInitialCacheGiveTheReferencePrefixTuningLogits(string model)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var caseName = model + "-prefix";
        var io = DecoderFixtures.Io(caseName);
        var loaded = DecoderFixtures.Load(model);
        var layout = loaded.PromptLayout!;
        using var adapterConfig = JsonDocument.Parse(File.ReadAllBytes(Fixtures.Path("cases", caseName, "adapter", "adapter_config.json")));
        Assert.Equal(adapterConfig.RootElement.GetProperty("num_attention_heads").GetInt32(), layout.AttentionHeads);
        Assert.Equal(adapterConfig.RootElement.GetProperty("token_dim").GetInt32(), layout.AttentionHeads * layout.HeadDim);
        Assert.Equal(adapterConfig.RootElement.GetProperty("num_layers").GetInt32(), layout.LayerCount);

        var prompt = SafeTensors.Load(Fixtures.Path("cases", caseName, "adapter", "adapter_model.safetensors"))["prompt_embeddings"];
        var ids = io["input.input_ids"];
        var mask = io["input.attention_mask"];
        var (batch, virtualTokens) = (ids.shape[0], prompt.shape[0]);
        var perLayer = prompt.unsqueeze(0).expand(batch, -1, -1)
            .view(batch, virtualTokens, layout.LayerCount * 2, layout.AttentionHeads, layout.HeadDim)
            .permute(2, 0, 3, 1, 4);                                          // (layers × 2, B, heads, P, D)
        var prefixes = Enumerable.Range(0, layout.LayerCount).Select(i => (perLayer[2 * i], perLayer[2 * i + 1])).ToList();
        using var cache = new KeyValueCache(prefixes);

        var logits = loaded.call(new ModelInputs
        {
            InputIds = ids,
            AttentionMask = cat([ones(batch, virtualTokens, mask.dtype), mask], dim: 1),
            PastKeyValues = cache,
        }).Logits;

        var reference = io["output.peft_logits"];
        Assert.True(logits.allclose(reference, rtol: 0, atol: 1e-5), $"max diff {(logits - reference).abs().max().item<float>()}");
    }

    [Theory]
    [InlineData("gptj-clm", "lm_head", "transformer.wte.weight")]
    [InlineData("gpt_neox-clm", "embed_out", "gpt_neox.embed_in.weight")]
    [InlineData("llama-clm", "lm_head", "model.embed_tokens.weight")]
    public void ATiedHeadReadsTheEmbeddingWeight(string model, string head, string embedding)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        using var untiedScratch = new ScratchDirectory();
        using var tiedScratch = new ScratchDirectory();
        var untied = DecoderFixtures.LoadWith(model, untiedScratch, _ => { });
        var tied = DecoderFixtures.LoadWith(model, tiedScratch, c => c["tie_word_embeddings"] = true);

        Assert.Empty(untied.TiedWeights);
        Assert.Equal([(head + ".weight", embedding)], tied.TiedWeights);

        // With the head's weight set to the embedding's, the untied model must compute what the tied one does.
        var inputs = DecoderFixtures.Inputs(model + "-lora");
        var linear = (TorchSharp.Modules.Linear)untied.named_modules().Single(m => m.name == head).module;
        linear.weight!.copy_(untied.state_dict()[embedding]);
        var expected = untied.call(inputs).Logits;
        Assert.True(tied.call(inputs).Logits.allclose(expected, rtol: 0, atol: 1e-6));

        // Untying gives the head its own copy: the embedding can then change without moving the head.
        tied.UntieOutputEmbeddings();
        Assert.Empty(tied.TiedWeights);
        tied.state_dict()[embedding].add_(1.0);
        var headWeight = tied.state_dict()[head + ".weight"];
        Assert.True(headWeight.equal(untied.state_dict()[embedding]).all().item<bool>());
    }
}
