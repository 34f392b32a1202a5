using System.Text.Json;
using Peft.Backbones.Bart;
using Peft.Backbones.T5;
using Peft.Modeling;
using TorchSharp;
using static TorchSharp.torch;

namespace Peft.Tests.Backbones;

/// <summary>Pieces of T5 and BART the reference cases do not reach (long distances, untied heads, buffers).</summary>
public sealed class EncoderDecoderModulesTests
{
    private static readonly long[] Distances = [-300, -128, -100, -40, -20, -9, -8, -7, -1, 0, 1, 7, 8, 9, 20, 40, 100, 128, 300];

    [Fact]
    public void BidirectionalBucketsMatchMeshTensorFlow()
    {
        // transformers' _relative_position_bucket(bidirectional=True, num_buckets=32, max_distance=128)
        long[] expected = [15, 15, 15, 12, 10, 8, 8, 7, 1, 0, 17, 23, 24, 24, 26, 28, 31, 31, 31];
        Assert.Equal(expected, T5Attention.RelativePositionBucket(torch.tensor(Distances), bidirectional: true, 32, 128).data<long>().ToArray());
    }

    [Fact]
    public void DecoderBucketsLookOnlyBackwards()
    {
        long[] expected = [31, 31, 30, 23, 17, 9, 8, 7, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        Assert.Equal(expected, T5Attention.RelativePositionBucket(torch.tensor(Distances), bidirectional: false, 32, 128).data<long>().ToArray());
    }

    [Fact]
    public void T5LayerNormScalesByTheRootMeanSquareWithoutCentering()
    {
        var norm = new T5LayerNorm(4, 1e-6);
        var x = torch.tensor(new float[] { 1, 2, 3, 4 });
        var expected = x / Math.Sqrt((1 + 4 + 9 + 16) / 4.0 + 1e-6);
        Assert.True(torch.allclose(norm.call(x), expected, rtol: 1e-6, atol: 1e-7));
    }

    [Fact]
    public void MT5ConfigDefaultsToGatedGeluAndNeverRescales()
    {
        var config = Parse<T5Config>(new MT5Architecture(), """{"model_type":"mt5","vocab_size":16,"d_model":8,"d_kv":2,"d_ff":12,"num_layers":1,"num_heads":4}""");
        Assert.True(config.IsGatedAct);
        Assert.Equal("gelu_new", config.DenseActFn);
        Assert.False(config.ScaleDecoderOutputs);
    }

    [Fact]
    public void T5ConfigsWithoutScaleDecoderOutputsFollowTieWordEmbeddings()
    {
        const string sizes = "\"vocab_size\":16,\"d_model\":8,\"d_kv\":2,\"d_ff\":12,\"num_layers\":1,\"num_heads\":4";
        Assert.True(Parse<T5Config>(new T5Architecture(), "{\"model_type\":\"t5\"," + sizes + "}").ScaleDecoderOutputs);
        Assert.False(Parse<T5Config>(new T5Architecture(), "{\"model_type\":\"t5\",\"tie_word_embeddings\":false," + sizes + "}").ScaleDecoderOutputs);
        Assert.False(Parse<T5Config>(new T5Architecture(), "{\"model_type\":\"t5\",\"scale_decoder_outputs\":false," + sizes + "}").ScaleDecoderOutputs);
    }

    [Fact]
    public void UntiedT5HasItsOwnHead()
    {
        var architecture = new T5Architecture();
        var config = Parse<T5Config>(architecture, """{"model_type":"t5","tie_word_embeddings":false,"vocab_size":16,"d_model":8,"d_kv":2,"d_ff":12,"num_layers":1,"num_decoder_layers":2,"num_heads":4,"feed_forward_proj":"gated-gelu"}""");
        var model = architecture.Build(config, TaskType.Seq2SeqLM);
        var names = model.state_dict().Keys.ToList();
        Assert.Contains("lm_head.weight", names);
        Assert.Contains("decoder.block.1.layer.2.DenseReluDense.wi_1.weight", names);
        Assert.Contains("decoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight", names);
        Assert.DoesNotContain("decoder.block.1.layer.0.SelfAttention.relative_attention_bias.weight", names);
        // The stacks' embeddings stay tied to shared (transformers 5 ties them whatever tie_word_embeddings says); the head does not.
        Assert.Contains("encoder.embed_tokens.weight", names);
        Assert.Equal([("encoder.embed_tokens.weight", "shared.weight"), ("decoder.embed_tokens.weight", "shared.weight")], model.TiedWeights);
        Assert.DoesNotContain(model.named_parameters(), p => p.name.Contains("embed_tokens", StringComparison.Ordinal));
        Assert.Equal(2, model.PromptLayout!.LayerCount);
        Assert.Equal(1, model.PromptLayout.EncoderLayerCount);
    }

    [Fact]
    public void BartFinalLogitsBiasIsABufferThatShiftsTheLogits()
    {
        var architecture = new BartArchitecture();
        var config = Parse<BartConfig>(architecture, """{"model_type":"bart","vocab_size":16,"d_model":8,"encoder_layers":1,"decoder_layers":1,"encoder_attention_heads":2,"decoder_attention_heads":2,"encoder_ffn_dim":12,"decoder_ffn_dim":12,"max_position_embeddings":10,"pad_token_id":1,"decoder_start_token_id":2,"dropout":0.0}""");
        var model = architecture.Build(config, TaskType.Seq2SeqLM);
        model.eval();
        Assert.Contains("final_logits_bias", model.state_dict().Keys);
        Assert.DoesNotContain(model.named_parameters(), p => p.name == "final_logits_bias");
        var inputs = new ModelInputs { InputIds = torch.tensor(new long[,] { { 0, 5, 6, 2 } }), DecoderInputIds = torch.tensor(new long[,] { { 2, 5 } }) };
        using var noGrad = torch.no_grad();
        var before = model.call(inputs).Logits;
        model.state_dict()["final_logits_bias"].fill_(0.5f);
        var after = model.call(inputs).Logits;
        Assert.True(torch.allclose(after - before, torch.full_like(before, 0.5f), atol: 1e-5));
    }

    private static TConfig Parse<TConfig>(Peft.Plugins.IArchitecture architecture, string json) where TConfig : ModelConfig
    {
        using var document = JsonDocument.Parse(json);
        return (TConfig)architecture.ParseConfig(document.RootElement, "test");
    }
}
