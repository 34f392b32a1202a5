using System.Text.Json;
using Peft.Backbones.ClipText;
using Peft.Checkpoints;
using Peft.Backbones.Deberta;
using Peft.Backbones.DebertaV2;
using Peft.Modeling;
using Peft.Plugins;
using Peft.Tests.Checkpoints;
using TorchSharp;
using static TorchSharp.torch;

namespace Peft.Tests.Backbones;

/// <summary>
/// DeBERTa, DeBERTa-v2 and CLIP text in the configurations the reference fixtures do not cover
/// (relative attention, log buckets, shared keys, the convolution, talking heads): they run, train,
/// and padding on the right changes nothing for the real tokens.
/// </summary>
public class EncoderBackboneTests
{
    private const string Sizes = """
        "vocab_size": 64, "hidden_size": 16, "num_hidden_layers": 2, "num_attention_heads": 2,
        "intermediate_size": 24, "max_position_embeddings": 32, "hidden_dropout_prob": 0.0,
        "attention_probs_dropout_prob": 0.0, "pad_token_id": 0, "num_labels": 3
        """;

    public static TheoryData<string, string> DebertaConfigs() => new()
    {
        { "deberta", """ "relative_attention": true, "pos_att_type": "c2p|p2c", "max_relative_positions": 8 """ },
        { "deberta", """ "relative_attention": true, "pos_att_type": ["p2c"], "position_biased_input": false, "talking_head": true """ },
        { "deberta", """ "type_vocab_size": 2, "embedding_size": 12 """ },
        { "deberta-v2", """ "relative_attention": true, "pos_att_type": ["p2c", "c2p"], "position_buckets": 4, "share_att_key": true, "norm_rel_ebd": "layer_norm", "position_biased_input": false, "conv_kernel_size": 3 """ },
        { "deberta-v2", """ "relative_attention": true, "pos_att_type": "c2p|p2c", "max_relative_positions": 6 """ },
        { "deberta-v2", """ "relative_attention": true, "pos_att_type": ["c2p"], "position_buckets": 8, "max_relative_positions": 16, "share_att_key": true, "attention_head_size": 8 """ },
    };

    [Theory]
    [MemberData(nameof(DebertaConfigs))]
    public void DebertaRightPaddingLeavesRealTokensAlone(string modelType, string extra)
    {
        torch.manual_seed(1);
        var architecture = PeftRegistry.Default.Architecture(modelType);
        var model = Build(architecture, "{" + Sizes + ", \"model_type\": \"" + modelType + "\", " + extra + "}", TaskType.TokenClassification);
        model.eval();
        var ids = torch.tensor(new long[,] { { 5, 9, 3, 7, 11, 2, 8, 4, 6, 10 }, { 12, 4, 9, 6, 3, 0, 0, 0, 0, 0 } });
        var mask = ids.ne(0).to(ScalarType.Int64);
        var padded = model.call(new ModelInputs { InputIds = ids, AttentionMask = mask }).Logits;
        var alone = model.call(new ModelInputs { InputIds = ids[1..2, ..5], AttentionMask = mask[1..2, ..5] }).Logits;
        Assert.True(padded[1..2, ..5].allclose(alone, rtol: 1e-5, atol: 1e-6), $"{modelType} {extra}: padding changed the real tokens");

        model.train();
        var loss = model.call(new ModelInputs { InputIds = ids, AttentionMask = mask, Labels = torch.tensor(new long[,] { { 0, 1, 2, 0, 1, 2, 0, 1, 2, 0 }, { 1, 2, 0, 1, 2, -100, -100, -100, -100, -100 } }) }).Loss!;
        loss.backward();
        Assert.All(model.parameters(), p => Assert.True(p.grad is null || p.grad.isfinite().all().item<bool>()));
        Assert.True(loss.isfinite().item<bool>());
    }

    [Fact]
    public void DebertaSequenceClassifierPoolsTheFirstToken()
    {
        torch.manual_seed(2);
        var model = Build(new DebertaV2Architecture(), "{" + Sizes + """, "model_type": "deberta-v2", "relative_attention": true, "pos_att_type": ["p2c", "c2p"] }""", TaskType.SequenceClassification);
        model.eval();
        var ids = torch.tensor(new long[,] { { 5, 9, 3, 7 }, { 12, 4, 0, 0 } });
        var output = model.call(new ModelInputs { InputIds = ids, AttentionMask = ids.ne(0).to(ScalarType.Int64), Labels = torch.tensor(new long[] { 2, -1 }) });
        Assert.Equal([2L, 3L], output.Logits.shape);
        // Negative labels are left out, as the reference's DeBERTa heads do.
        var expected = nn.functional.cross_entropy(output.Logits[0..1], torch.tensor(new long[] { 2 }));
        Assert.True(output.Loss!.allclose(expected));
    }

    [Fact]
    public void DebertaRefusesPrefixesAsTheReferenceDoes()
    {
        var model = Build(new DebertaArchitecture(), "{" + Sizes + """, "model_type": "deberta" }""", TaskType.SequenceClassification);
        var prefixes = new KeyValueCache([(torch.zeros(1, 2, 3, 8), torch.zeros(1, 2, 3, 8)), (torch.zeros(1, 2, 3, 8), torch.zeros(1, 2, 3, 8))]);
        Assert.Throws<NotSupportedException>(() => model.call(new ModelInputs { InputIds = torch.ones(1, 4, ScalarType.Int64), PastKeyValues = prefixes }));
    }

    [Fact]
    public void ClipTextIsCausalAndIgnoresRightPadding()
    {
        torch.manual_seed(3);
        var model = Build(new ClipTextArchitecture(), """
            { "model_type": "clip_text_model", "vocab_size": 64, "hidden_size": 16, "num_hidden_layers": 2,
              "num_attention_heads": 2, "intermediate_size": 24, "max_position_embeddings": 16 }
            """, TaskType.FeatureExtraction);
        model.eval();
        var ids = torch.tensor(new long[,] { { 5, 9, 3, 7, 11, 2 }, { 12, 4, 9, 1, 1, 1 } });
        var mask = torch.tensor(new long[,] { { 1, 1, 1, 1, 1, 1 }, { 1, 1, 1, 0, 0, 0 } });
        var hidden = model.call(new ModelInputs { InputIds = ids, AttentionMask = mask }).Logits;
        Assert.Equal([2L, 6L, 16L], hidden.shape);
        var prefix = model.call(new ModelInputs { InputIds = ids[.., ..3], AttentionMask = mask[.., ..3] }).Logits;
        Assert.True(hidden[.., ..3].allclose(prefix, rtol: 1e-5, atol: 1e-6), "later tokens changed earlier ones");
        var embeds = model.call(new ModelInputs { InputsEmbeds = model.InputEmbeddings.call(ids), AttentionMask = mask }).Logits;
        Assert.True(hidden.allclose(embeds));
    }

    private static PreTrainedModel Build(IArchitecture architecture, string json, TaskType task)
    {
        using var document = JsonDocument.Parse(json);
        return architecture.Build(architecture.ParseConfig(document.RootElement, "test config"), task);
    }
}

/// <summary>
/// The forward path prompt tuning drives (virtual-token embeddings prepended, the mask P columns
/// longer) reproduces the reference's prompt-tuning logits, using the saved prompt directly.
/// </summary>
public class EncoderPromptInputTests
{
    [Theory]
    [InlineData("deberta-seqcls")]
    [InlineData("deberta_v2-seqcls")]
    public void PrependedEmbeddingsReproduceTheReference(string model)
    {
        var caseDirectory = Fixtures.Path("cases", model + "-prompt");
        var io = SafeTensors.Load(Path.Combine(caseDirectory, "io.safetensors"));
        var adapter = SafeTensors.Load(Path.Combine(caseDirectory, "adapter", "adapter_model.safetensors"));
        var network = PeftModels.Default.LoadPretrained(Fixtures.Path("models", model), TaskType.SequenceClassification);
        using (torch.no_grad())
        {
            // The classifier was trained as modules_to_save; the adapter file holds its copy.
            foreach (var (name, parameter) in network.named_parameters().Where(p => p.name.StartsWith("classifier.", StringComparison.Ordinal)))
            {
                parameter.copy_(adapter["base_model." + name]);
            }
        }
        var (ids, mask) = (io["input.input_ids"], io["input.attention_mask"]);
        var prompt = adapter["prompt_embeddings"];                                  // (P, C)
        var batch = ids.shape[0];
        var embeds = torch.cat([prompt.unsqueeze(0).expand(batch, -1, -1), network.InputEmbeddings.call(ids)], 1);
        var longerMask = torch.cat([torch.ones(batch, prompt.shape[0], ScalarType.Int64), mask], 1);
        var logits = network.call(new ModelInputs { InputsEmbeds = embeds, AttentionMask = longerMask }).Logits;
        Assert.True(logits.allclose(io["output.peft_logits"], rtol: 1e-5, atol: 1e-5));
    }
}
