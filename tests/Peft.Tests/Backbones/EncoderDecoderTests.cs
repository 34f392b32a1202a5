using Peft.Checkpoints;
using Peft.Modeling;
using Peft.Tests.Checkpoints;
using TorchSharp;
using static TorchSharp.torch;

namespace Peft.Tests.Backbones;

/// <summary>
/// The prompt-learning contract of the encoder-decoder backbones, checked against the reference's prefix- and
/// prompt-tuning cases without the prompt-learning methods: the prefixes or virtual tokens are built here the way
/// the reference builds them and handed to the base model through <see cref="ModelInputs"/>.
/// </summary>
public sealed class EncoderDecoderTests
{
    public static TheoryData<string> Models => new() { "t5", "mt5", "bart" };

    [Theory]
    [MemberData(nameof(Models))]
    public void PrefixesInTheDecoderSelfAttentionReproduceTheReference(string model)
    {
        using var scope = torch.NewDisposeScope();
        var (baseModel, io, adapter) = Load(model, "prefix");
        var layout = baseModel.PromptLayout!;
        Assert.True(layout.IsEncoderDecoder);
        var inputs = Inputs(io);

        using var cache = ReferencePrefixes(adapter["prompt_embeddings"], batch: inputs.InputIds!.shape[0], layout, numLayers: layout.EncoderLayerCount);
        var logits = baseModel.call(inputs with { PastKeyValues = cache }).Logits;
        AssertClose(logits, io["output.peft_logits"]);
    }

    [Theory]
    [MemberData(nameof(Models))]
    public void VirtualTokensInFrontOfTheEncoderInputReproduceTheReference(string model)
    {
        using var scope = torch.NewDisposeScope();
        var (baseModel, io, adapter) = Load(model, "prompt");
        var inputs = Inputs(io);
        var logits = baseModel.call(WithVirtualTokens(baseModel, inputs, adapter["prompt_embeddings"])).Logits;
        AssertClose(logits, io["output.peft_logits"]);
    }

    [Theory]
    [MemberData(nameof(Models))]
    public void GenerationWithPrefixesMatchesTheReference(string model)
    {
        using var scope = torch.NewDisposeScope();
        var (baseModel, io, adapter) = Load(model, "prefix");
        var layout = baseModel.PromptLayout!;
        var prompt = io["input.input_ids"][0..1, 0..6];
        // As the reference's prepare_inputs_for_generation: prefixes only when no cache exists yet.
        var wrapped = new Preparing(baseModel, inputs => inputs.PastKeyValues is not null ? inputs
            : inputs with { PastKeyValues = ReferencePrefixes(adapter["prompt_embeddings"], inputs.DecoderInputIds!.shape[0], layout, layout.EncoderLayerCount) });
        var generated = Generation.Greedy(wrapped, baseModel.Config, prompt, torch.ones_like(prompt), maxNewTokens: 5, encoderDecoder: true);
        Assert.Equal(io["output.generated_ids"].data<long>().ToArray(), generated.data<long>().ToArray());
    }

    [Theory]
    [MemberData(nameof(Models))]
    public void GenerationWithVirtualTokensMatchesTheReference(string model)
    {
        using var scope = torch.NewDisposeScope();
        var (baseModel, io, adapter) = Load(model, "prompt");
        var prompt = io["input.input_ids"][0..1, 0..6];
        // Later steps carry the encoder output: the inputs pass unchanged.
        var wrapped = new Preparing(baseModel, inputs => inputs.EncoderHiddenStates is not null ? inputs
            : WithVirtualTokens(baseModel, inputs, adapter["prompt_embeddings"]));
        var generated = Generation.Greedy(wrapped, baseModel.Config, prompt, torch.ones_like(prompt), maxNewTokens: 5, encoderDecoder: true);
        Assert.Equal(io["output.generated_ids"].data<long>().ToArray(), generated.data<long>().ToArray());
    }

    [Theory]
    [MemberData(nameof(Models))]
    public void LabelsAloneGiveTheSameLossAsShiftedDecoderInputs(string model)
    {
        using var scope = torch.NewDisposeScope();
        var (baseModel, io, _) = Load(model, "lora");
        var inputs = Inputs(io) with { Labels = io["input.labels"] };
        using var noGrad = torch.no_grad();
        var given = baseModel.call(inputs).Loss!;
        var shifted = baseModel.call(inputs with { DecoderInputIds = null }).Loss!;
        Assert.Equal(given.item<float>(), shifted.item<float>(), 6);
    }

    [Theory]
    [MemberData(nameof(Models))]
    public void CachedDecodingEqualsOneFullForward(string model)
    {
        using var scope = torch.NewDisposeScope();
        var (baseModel, io, _) = Load(model, "lora");
        var inputs = Inputs(io);
        using var noGrad = torch.no_grad();
        var full = baseModel.call(inputs).Logits;
        var decoderIds = inputs.DecoderInputIds!;
        var first = baseModel.call(inputs with { DecoderInputIds = decoderIds[.., 0..1], UseCache = true });
        var steps = new List<Tensor> { first.Logits };
        var (cache, cross) = (first.PastKeyValues!, first.CrossAttentionCache!);
        for (int t = 1; t < decoderIds.shape[1]; t++)
        {
            var output = baseModel.call(new ModelInputs
            {
                EncoderHiddenStates = first.EncoderLastHiddenState,
                AttentionMask = inputs.AttentionMask,
                DecoderInputIds = decoderIds[.., t..(t + 1)],
                PastKeyValues = cache,
                CrossAttentionCache = cross,
                UseCache = true,
            });
            steps.Add(output.Logits);
        }
        AssertClose(torch.cat(steps, dim: 1), full);
        cache.Dispose();
        cross.Dispose();
    }

    /// <summary>
    /// The reference's get_prompt for num_transformer_submodules = 2: the (V, num_layers·2·C) table viewed as
    /// (B, V, 2L, H, D), concatenated with itself along the 2L axis, permuted to (4L, B, H, V, D) and cut into
    /// chunks of 4; chunk i is decoder layer i's (self key, self value, cross key, cross value), and the cross
    /// pair is dropped (transformers 5 gets an empty cross-attention cache).
    /// </summary>
    private static KeyValueCache ReferencePrefixes(Tensor table, long batch, PromptLayout layout, int numLayers)
    {
        var virtualTokens = table.shape[0];
        var past = table.unsqueeze(0).expand(batch, -1, -1)
            .view(batch, virtualTokens, numLayers * 2, layout.AttentionHeads, layout.HeadDim);
        past = torch.cat([past, past], dim: 2).permute(2, 0, 3, 1, 4);       // (4L, B, H, V, D)
        var layers = Enumerable.Range(0, layout.LayerCount)
            .Select(i => (past[4 * i].contiguous(), past[4 * i + 1].contiguous()))
            .ToList();
        return new KeyValueCache(layers);
    }

    /// <summary>
    /// The reference's prompt tuning for seq2seq: the table holds num_virtual_tokens × num_transformer_submodules (2)
    /// rows, of which the first num_virtual_tokens go before the encoder input; the mask is extended with ones.
    /// </summary>
    private static ModelInputs WithVirtualTokens(PreTrainedModel model, ModelInputs inputs, Tensor table)
    {
        var batch = inputs.InputIds!.shape[0];
        var virtualTokens = table.shape[0] / 2;
        var embeds = model.InputEmbeddings.call(inputs.InputIds);
        var prompts = table[..(int)virtualTokens].unsqueeze(0).expand(batch, -1, -1);
        var mask = inputs.AttentionMask is null ? null
            : torch.cat([torch.ones(batch, virtualTokens, inputs.AttentionMask.dtype), inputs.AttentionMask], dim: 1);
        return inputs with { InputIds = null, InputsEmbeds = torch.cat([prompts, embeds], dim: 1), AttentionMask = mask };
    }

    private static (PreTrainedModel Model, Dictionary<string, Tensor> Io, Dictionary<string, Tensor> Adapter) Load(string model, string method)
    {
        var baseModel = PeftModels.Default.LoadPretrained(Fixtures.Path("models", model + "-s2s"), TaskType.Seq2SeqLM);
        var caseDirectory = Fixtures.Path("cases", $"{model}-s2s-{method}");
        var io = SafeTensors.Load(System.IO.Path.Combine(caseDirectory, "io.safetensors")).ToDictionary();
        var adapter = SafeTensors.Load(System.IO.Path.Combine(caseDirectory, "adapter", "adapter_model.safetensors")).ToDictionary();
        return (baseModel, io, adapter);
    }

    private static ModelInputs Inputs(IReadOnlyDictionary<string, Tensor> io) => new()
    {
        InputIds = io["input.input_ids"],
        AttentionMask = io["input.attention_mask"],
        DecoderInputIds = io["input.decoder_input_ids"],
    };

    private static void AssertClose(Tensor actual, Tensor expected)
    {
        Assert.Equal(expected.shape, actual.shape);
        var gap = (actual - expected).abs().max().item<float>();
        var bound = 1e-5 + 1e-5 * expected.abs().max().item<float>();
        Assert.True(gap <= bound, $"max |ours - reference| = {gap} > {bound}");
    }

    /// <summary>Stands in for a prompt-learning adapter: rewrites the inputs, then runs the model.</summary>
    private sealed class Preparing(PreTrainedModel model, Func<ModelInputs, ModelInputs> prepare) : nn.Module<ModelInputs, ModelOutputs>("Preparing")
    {
        public override ModelOutputs forward(ModelInputs inputs) => model.forward(prepare(inputs));
    }
}
