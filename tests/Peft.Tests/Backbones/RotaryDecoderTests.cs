using System.Text.Json;
using Peft.Tests.Checkpoints;
using TorchSharp;
using static TorchSharp.torch;

namespace Peft.Tests.Backbones;

/// <summary>
/// Checks of the rotary decoders (GPT-J, GPT-NeoX, Llama) beyond DecoderModelTests' table: module
/// names (GPT-NeoX's head included), the prefix layout of grouped-query attention, embeddings as
/// inputs, position ids, and tied heads.
/// </summary>
public class RotaryDecoderTests
{
    public static TheoryData<string> Models() => new() { "gptj-clm", "gpt_neox-clm", "llama-clm" };

    private static string ModelType(string model) => model[..model.LastIndexOf('-')];

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
    /// The prefix table's shape in the reference's adapter config is the model's PromptLayout: for
    /// Llama's grouped-query attention, key/value heads (token_dim = kv heads × head_dim).
    /// DecoderModelTests checks the logits these prefixes give.
    /// </summary>
    [Theory]
    [MemberData(nameof(Models))]
    public void PromptLayoutIsTheReferencesPrefixLayout(string model)
    {
        using var scope = NewDisposeScope();
        var layout = DecoderFixtures.Load(model).PromptLayout!;
        using var prefix = JsonDocument.Parse(File.ReadAllBytes(Fixtures.Path("cases", model + "-prefix", "adapter", "adapter_config.json")));
        using var prompt = JsonDocument.Parse(File.ReadAllBytes(Fixtures.Path("cases", model + "-prompt", "adapter", "adapter_config.json")));

        Assert.Equal(prefix.RootElement.GetProperty("num_layers").GetInt32(), layout.LayerCount);
        Assert.Equal(prefix.RootElement.GetProperty("num_attention_heads").GetInt32(), layout.AttentionHeads);
        Assert.Equal(prefix.RootElement.GetProperty("token_dim").GetInt32(), layout.AttentionHeads * layout.HeadDim);
        Assert.Equal(prompt.RootElement.GetProperty("token_dim").GetInt32(), layout.HiddenSize);
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
