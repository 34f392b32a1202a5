using Peft.Methods.PrefixTuning;
using Peft.Methods.PromptTuning;
using Peft.Methods.PTuning;
using Peft.Modeling;
using Peft.Plugins;
using Peft.PromptLearning;
using TorchSharp;
using static TorchSharp.torch;

namespace Peft.Tests.PromptLearning;

/// <summary>How prompt-learning adapters rewrite a forward pass's inputs.</summary>
public class PromptInputsTests
{
    private static readonly Tensor Ids = TinyModels.Ids([5, 6, 7], [8, 9, 0]);
    private static readonly Tensor Mask = TinyModels.Ids([1, 1, 1], [1, 1, 0]);

    private static PromptLearningAdapter Adapter(PeftModel peft) => (PromptLearningAdapter)peft.ActiveAdapter;

    [Fact]
    public void VirtualTokensGoBeforeTheEmbeddingsWithMaskAndIgnoredLabels()
    {
        var peft = TinyModels.Peft(TinyModels.Gpt2(TaskType.CausalLM), new PromptEncoderConfig { NumVirtualTokens = 2, EncoderHiddenSize = 4 });
        var adapter = Adapter(peft);

        var prepared = adapter.PrepareInputs(new ModelInputs { InputIds = Ids, AttentionMask = Mask, Labels = Ids, PositionIds = torch.arange(3).unsqueeze(0) });

        Assert.Null(prepared.InputIds);
        Assert.Null(prepared.PositionIds);
        Assert.Equal(new long[] { 2, 5, 8 }, prepared.InputsEmbeds!.shape);
        TinyModels.AssertClose(adapter.Encoder.Prompts().expand(2, -1, -1), prepared.InputsEmbeds[.., ..2], 0);
        TinyModels.AssertClose(peft.Model.InputEmbeddings.call(Ids), prepared.InputsEmbeds[.., 2..], 0);
        Assert.Equal(new long[] { 1, 1, 1, 1, 1, 1, 1, 1, 1, 0 }, prepared.AttentionMask!.data<long>().ToArray());
        Assert.Equal(new long[] { -100, -100, 5, 6, 7, -100, -100, 8, 9, 0 }, prepared.Labels!.data<long>().ToArray());
    }

    [Fact]
    public void SequenceClassificationKeepsLabelsAndPadsTokenTypes()
    {
        var peft = TinyModels.Peft(TinyModels.Gpt2(TaskType.SequenceClassification), new PromptTuningConfig { NumVirtualTokens = 2 });
        var labels = torch.tensor(new long[] { 1, 0 });

        var prepared = Adapter(peft).PrepareInputs(new ModelInputs { InputIds = Ids, Labels = labels, TokenTypeIds = torch.ones_like(Ids) });

        Assert.Same(labels, prepared.Labels);
        Assert.Null(prepared.AttentionMask);
        Assert.Equal(new long[] { 0, 0, 1, 1, 1, 0, 0, 1, 1, 1 }, prepared.TokenTypeIds!.data<long>().ToArray());
    }

    [Fact]
    public void PrefixesBecomeTheInitialCacheAndShiftPositions()
    {
        var peft = TinyModels.Peft(TinyModels.Gpt2(TaskType.CausalLM), new PrefixTuningConfig { NumVirtualTokens = 3 });
        var adapter = Adapter(peft);
        var table = adapter.Encoder.Prompts().view(3, 2, 2, 2, 4);                 // (V, layer, k/v, head, dim)

        var prepared = adapter.PrepareInputs(new ModelInputs { InputIds = Ids, AttentionMask = Mask, Labels = Ids, PositionIds = torch.arange(3).unsqueeze(0) });

        Assert.Same(Ids, prepared.InputIds);
        Assert.Same(Ids, prepared.Labels);
        Assert.Equal(new long[] { 3, 4, 5 }, prepared.PositionIds!.data<long>().ToArray());
        Assert.Equal(new long[] { 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0 }, prepared.AttentionMask!.data<long>().ToArray());
        var cache = prepared.PastKeyValues!;
        Assert.Equal(2, cache.LayerCount);
        for (int layer = 0; layer < 2; layer++)
        {
            var (key, value) = cache[layer]!.Value;
            Assert.Equal(new long[] { 2, 2, 3, 4 }, key.shape);                  // (B, heads, V, head_dim)
            TinyModels.AssertClose(table[.., layer, 0].permute(1, 0, 2).expand(2, -1, -1, -1), key, 0);
            TinyModels.AssertClose(table[.., layer, 1].permute(1, 0, 2).expand(2, -1, -1, -1), value, 0);
        }
    }

    [Fact]
    public void LaterGenerationStepsAreLeftAlone()
    {
        foreach (PeftConfig config in new PeftConfig[] { new PromptTuningConfig { NumVirtualTokens = 2 }, new PrefixTuningConfig { NumVirtualTokens = 2 } })
        {
            var adapter = Adapter(TinyModels.Peft(TinyModels.Gpt2(TaskType.CausalLM), config));
            using var cache = new KeyValueCache([(torch.zeros(2, 2, 5, 4), torch.zeros(2, 2, 5, 4)), (torch.zeros(2, 2, 5, 4), torch.zeros(2, 2, 5, 4))]);
            var step = new ModelInputs { InputIds = Ids[.., ..1], AttentionMask = Mask, PastKeyValues = cache, UseCache = true };

            Assert.Same(step, adapter.PrepareInputs(step));
        }
    }

    [Fact]
    public void AnEmptyCacheStillGetsTheVirtualTokens()
    {
        var adapter = Adapter(TinyModels.Peft(TinyModels.Gpt2(TaskType.CausalLM), new PrefixTuningConfig { NumVirtualTokens = 2 }));
        using var empty = new KeyValueCache(2);

        var prepared = adapter.PrepareInputs(new ModelInputs { InputIds = Ids, PastKeyValues = empty, UseCache = true });

        Assert.Equal(2, prepared.PastKeyValues!.Length);
    }

    private static PromptLearningAdapter Seq2Seq(PeftConfig config) =>
        (PromptLearningAdapter)PeftRegistry.Default.Method(config.PeftType).Attach(new AdapterTarget(new StubSeq2Seq(), new StubArchitecture()), config, "default");

    [Fact]
    public void EncoderDecoderVirtualTokensEnterTheEncoder()
    {
        var adapter = Seq2Seq(new PromptTuningConfig { NumVirtualTokens = 2 });
        Assert.Equal(4, adapter.Encoder.Rows);                                       // two submodules by default
        var decoderIds = TinyModels.Ids([1, 2], [1, 3]);

        var prepared = adapter.PrepareInputs(new ModelInputs { InputIds = Ids, AttentionMask = Mask, DecoderInputIds = decoderIds, Labels = decoderIds });

        TinyModels.AssertClose(adapter.Encoder.Prompts()[..2].expand(2, -1, -1), prepared.InputsEmbeds![.., ..2], 0);
        Assert.Equal(new long[] { 2, 5 }, prepared.AttentionMask!.shape);
        Assert.Same(decoderIds, prepared.DecoderInputIds);
        Assert.Same(decoderIds, prepared.Labels);
        Assert.Null(prepared.PastKeyValues);

        // Later steps reuse the encoder output, which holds the virtual tokens: only the mask grows.
        var encoded = torch.zeros(2, 5, 8);
        var step = adapter.PrepareInputs(new ModelInputs { AttentionMask = Mask, EncoderHiddenStates = encoded, DecoderInputIds = decoderIds[.., 1..] });
        Assert.Equal(new long[] { 1, 1, 1, 1, 1, 1, 1, 1, 1, 0 }, step.AttentionMask!.data<long>().ToArray());
        Assert.Null(step.InputsEmbeds);
    }

    [Fact]
    public void EncoderDecoderPrefixesEnterTheDecoderAsTheReferenceSplitsThem()
    {
        var adapter = Seq2Seq(new PrefixTuningConfig { NumVirtualTokens = 2 });
        var table = adapter.Encoder.Prompts().view(2, 3, 2, 2, 4);                   // (V, layer, k/v, head, dim)
        var decoderMask = TinyModels.Ids([1, 1], [1, 0]);

        var prepared = adapter.PrepareInputs(new ModelInputs { InputIds = Ids, AttentionMask = Mask, DecoderInputIds = decoderMask, DecoderAttentionMask = decoderMask });

        Assert.Same(Mask, prepared.AttentionMask);
        Assert.Equal(new long[] { 1, 1, 1, 1, 1, 1, 1, 0 }, prepared.DecoderAttentionMask!.data<long>().ToArray());
        var cache = prepared.PastKeyValues!;
        Assert.Null(prepared.CrossAttentionCache);
        // With two submodules decoder layer i receives the prefixes of layer (2i mod layers).
        foreach (var (layer, source) in new[] { (0, 0), (1, 2), (2, 1) })
        {
            var (key, value) = cache[layer]!.Value;
            TinyModels.AssertClose(table[.., source, 0].permute(1, 0, 2).expand(2, -1, -1, -1), key, 0);
            TinyModels.AssertClose(table[.., source, 1].permute(1, 0, 2).expand(2, -1, -1, -1), value, 0);
        }
    }
}
