using System.Text.Json;
using Microsoft.ML.OnnxRuntime;
using Peft.Checkpoints;
using Peft.Modeling;
using Peft.Pretrained.Onnx;
using TorchSharp;
using Xunit.Abstractions;

namespace Peft.Pretrained.Tests;

[Collection(MiniLmCollection.Name)]
public sealed class MiniLmModelTests(MiniLmFixture fixture, ITestOutputHelper output)
{
    private static readonly string[] Sentences =
    [
        "The quick brown fox jumps over the lazy dog.",
        "A mathematician is a device for turning coffee into theorems.",
        "Hi!",
        "Sentence embeddings map text to vectors; similar meanings land close together, unaffable or not.",
    ];

    [Fact]
    public void The_package_embeds_the_model_and_its_vocabulary()
    {
        var names = AssemblyResources.Names(MiniLmModel.FindPackageAssembly());

        Assert.Contains(MiniLmModel.OnnxResource, names);
        Assert.Contains(MiniLmModel.VocabularyResource, names);
    }

    [Fact]
    public void Conversion_writes_a_bert_config_derived_from_the_tensors()
    {
        using var config = JsonDocument.Parse(File.ReadAllText(Path.Combine(fixture.ModelDirectory, "config.json")));
        var root = config.RootElement;

        Assert.Equal("bert", root.GetProperty("model_type").GetString());
        Assert.Equal(384, root.GetProperty("hidden_size").GetInt32());
        Assert.Equal(6, root.GetProperty("num_hidden_layers").GetInt32());
        Assert.Equal(12, root.GetProperty("num_attention_heads").GetInt32());
        Assert.Equal(1536, root.GetProperty("intermediate_size").GetInt32());
        Assert.Equal(30522, root.GetProperty("vocab_size").GetInt32());
        Assert.Equal(512, root.GetProperty("max_position_embeddings").GetInt32());
        Assert.Equal(2, root.GetProperty("type_vocab_size").GetInt32());
        Assert.Equal(1e-12, root.GetProperty("layer_norm_eps").GetDouble());
        Assert.Equal("gelu", root.GetProperty("hidden_act").GetString());
        Assert.Equal(0, root.GetProperty("pad_token_id").GetInt32());
        Assert.Equal(30522, File.ReadLines(Path.Combine(fixture.ModelDirectory, "vocab.txt")).Count());
    }

    [Fact]
    public void Every_linear_weight_is_recovered_with_its_hugging_face_name_and_layout()
    {
        var header = SafeTensors.ReadHeader(Path.Combine(fixture.ModelDirectory, "model.safetensors"));
        var names = header.Tensors.Keys.ToList();

        // 68 initializers keep their names; 36 Linear weights come back from MatMul → Add(bias).
        Assert.Equal(104, names.Count);
        string[] linears = ["attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense", "intermediate.dense", "output.dense"];
        for (var layer = 0; layer < 6; layer++)
        {
            foreach (var linear in linears)
            {
                var weight = header.Tensors[$"encoder.layer.{layer}.{linear}.weight"];
                var bias = header.Tensors[$"encoder.layer.{layer}.{linear}.bias"];
                Assert.Equal(bias.Shape[0], weight.Shape[0]); // (out, in), as torch.nn.Linear keeps it
            }
        }
        Assert.Equal([1536L, 384L], header.Tensors["encoder.layer.0.intermediate.dense.weight"].Shape);
        Assert.Equal([384L, 1536L], header.Tensors["encoder.layer.0.output.dense.weight"].Shape);
        Assert.Contains("pooler.dense.weight", names);
    }

    [Fact]
    public void Conversion_is_skipped_when_complete_and_redone_when_not()
    {
        var directory = fixture.ModelDirectory;
        var weights = Path.Combine(directory, "model.safetensors");
        var written = File.GetLastWriteTimeUtc(weights);

        Assert.Equal(directory, MiniLmModel.EnsureConverted(fixture.CacheDirectory));
        Assert.Equal(written, File.GetLastWriteTimeUtc(weights));

        var cache = Path.Combine(Path.GetTempPath(), "peft-minilm-redo-" + Guid.NewGuid().ToString("N"));
        try
        {
            var partial = Path.Combine(cache, MiniLmModel.Name);
            Directory.CreateDirectory(partial);
            File.WriteAllText(Path.Combine(partial, "config.json"), "{}");

            Assert.Equal(partial, MiniLmModel.EnsureConverted(cache));
            Assert.True(File.Exists(Path.Combine(partial, "model.safetensors")));
            Assert.Contains("\"bert\"", File.ReadAllText(Path.Combine(partial, "config.json")));
            Assert.Single(Directory.GetDirectories(cache)); // no staging directory left behind
        }
        finally
        {
            Directory.Delete(cache, recursive: true);
        }
    }

    [Fact]
    public void Last_hidden_state_matches_onnx_runtime_on_the_original_model()
    {
        var encoder = WordPieceEncoder.FromVocabulary(Path.Combine(fixture.ModelDirectory, "vocab.txt"), maxLength: 64);
        using var batch = encoder.EncodeBatch(Sentences);
        var shape = batch.InputIds.shape;
        var ids = batch.InputIds.data<long>().ToArray();
        var mask = batch.AttentionMask.data<long>().ToArray();

        float[] expected;
        using (var session = new InferenceSession(MiniLmModel.ReadOnnxModel()))
        using (var inputIds = OrtValue.CreateTensorValueFromMemory(ids, shape))
        using (var attentionMask = OrtValue.CreateTensorValueFromMemory(mask, shape))
        using (var tokenTypes = OrtValue.CreateTensorValueFromMemory(new long[ids.Length], shape))
        using (var options = new RunOptions())
        {
            var inputs = new Dictionary<string, OrtValue> { ["input_ids"] = inputIds, ["attention_mask"] = attentionMask, ["token_type_ids"] = tokenTypes };
            var names = session.InputNames.ToList();
            Assert.All(names, n => Assert.True(inputs.ContainsKey(n), $"unexpected ONNX input '{n}'"));
            using var results = session.Run(options, names, names.Select(n => inputs[n]).ToList(), ["last_hidden_state"]);
            expected = results[0].GetTensorDataAsSpan<float>().ToArray();
        }

        using var model = PeftModels.Default.LoadPretrained(fixture.ModelDirectory, TaskType.FeatureExtraction);
        using var noGrad = torch.no_grad();
        var outputs = model.forward(new ModelInputs { InputIds = batch.InputIds, AttentionMask = batch.AttentionMask });
        using var hidden = outputs.Logits!;
        Assert.Equal([shape[0], shape[1], 384L], hidden.shape);
        var actual = hidden.data<float>().ToArray();

        double maxAll = 0, maxReal = 0;
        for (var i = 0; i < actual.Length; i++)
        {
            var difference = Math.Abs(actual[i] - expected[i]);
            maxAll = Math.Max(maxAll, difference);
            if (mask[i / 384] == 1) maxReal = Math.Max(maxReal, difference);
        }
        output.WriteLine($"batch {shape[0]}x{shape[1]}: max |ours - ORT| = {maxReal:E3} on real tokens, {maxAll:E3} with padding");
        Assert.True(maxReal <= 1e-4, $"max abs difference on real tokens {maxReal:E3} > 1e-4");
        Assert.True(maxAll <= 1e-4, $"max abs difference with padding {maxAll:E3} > 1e-4");
    }

    [Fact]
    public void The_converted_model_loads_for_sequence_classification_with_a_fresh_head()
    {
        var encoder = WordPieceEncoder.FromVocabulary(Path.Combine(fixture.ModelDirectory, "vocab.txt"));
        using var batch = encoder.EncodeBatch(Sentences);

        using var model = PeftModels.Default.LoadPretrained(fixture.ModelDirectory, TaskType.SequenceClassification);
        using var noGrad = torch.no_grad();
        using var logits = model.forward(new ModelInputs { InputIds = batch.InputIds, AttentionMask = batch.AttentionMask }).Logits!;

        Assert.Equal([4L, 2L], logits.shape);
        Assert.True(logits.isfinite().all().item<bool>());
    }
}
