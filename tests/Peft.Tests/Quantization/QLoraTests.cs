using System.Text.Json.Nodes;
using System.Text;
using System.Text.Json;
using Peft.Checkpoints;
using Peft.Methods.IA3;
using Peft.Methods.Lora;
using Peft.Modeling;
using Peft.Quantization;
using Peft.Tests.Checkpoints;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Peft.Tests.Quantization;

/// <summary>LoRA over an 8-bit or 4-bit frozen base (QLoRA), on the fixtures' tiny Llama.</summary>
public class QLoraTests
{
    private static readonly string Llama = Fixtures.Path("models", "llama-clm");
    private static readonly string[] Projections = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"];

    public static TheoryData<string, bool> Formats() => new() { { "nf4", true }, { "nf4", false }, { "fp4", false }, { "int8", false } };

    private static QuantizationOptions Options(string format, bool doubleQuant, ModelDType compute = ModelDType.Float32) => format == "int8"
        ? new QuantizationOptions { LoadIn8Bit = true }
        : new QuantizationOptions { LoadIn4Bit = true, Bnb4BitQuantType = format, Bnb4BitUseDoubleQuant = doubleQuant, Bnb4BitComputeDType = compute };

    private static PreTrainedModel Load(QuantizationOptions? quantization, ModelDType dtype = ModelDType.Float32) =>
        PeftModels.Default.LoadPretrained(Llama, TaskType.CausalLM, new ModelLoadOptions { DType = dtype, Quantization = quantization });

    private static ModelInputs Inputs()
    {
        var ids = tensor(new long[] { 5, 17, 30, 3, 42, 8, 61, 9 }, [1, 8]);
        return new ModelInputs { InputIds = ids, AttentionMask = ones_like(ids), Labels = ids };
    }

    private static LoraConfig Lora(params string[] targets) => new() { R = 4, LoraAlpha = 8, TaskType = TaskType.CausalLM, TargetModules = targets };

    [Theory]
    [MemberData(nameof(Formats))]
    public void ALoraStepOverAQuantizedBaseTrainsTheAdapterAndLeavesTheStoredWeightsAlone(string format, bool doubleQuant)
    {
        using var scope = NewDisposeScope();
        var model = Load(Options(format, doubleQuant));
        var quantized = model.named_modules().Where(m => m.module is QuantizedLinear).ToList();
        Assert.Equal(2 * Projections.Length, quantized.Count);
        Assert.All(quantized, m => Assert.Equal(format, ((QuantizedLinear)m.module).Format));
        Assert.IsType<Linear>(model.named_modules().Single(m => m.name == "lm_head").module);

        torch.manual_seed(1);
        var peft = PeftModels.Default.GetPeftModel(model, Lora("q_proj", "v_proj", "down_proj"));
        peft.train();
        var stored = peft.named_parameters().Where(p => !p.parameter.is_floating_point()).ToDictionary(p => p.name, p => p.parameter.detach().clone());
        Assert.Equal(2 * Projections.Length, stored.Count);
        var trainable = peft.TrainableParameters().ToList();
        Assert.All(trainable, p => Assert.Contains("lora_", p.Name));
        var before = trainable.ToDictionary(p => p.Name, p => p.Parameter.detach().clone());
        using var optimizer = optim.AdamW(trainable.Select(p => p.Parameter), lr: 1e-2);
        for (int step = 0; step < 2; step++)
        {
            optimizer.zero_grad();
            var loss = peft.call(Inputs()).Loss!;
            Assert.True(float.IsFinite(loss.item<float>()));
            loss.backward();
            optimizer.step();
        }
        Assert.All(trainable, p => Assert.False(p.Parameter.equal(before[p.Name]).all().item<bool>(), $"{p.Name} did not move"));
        foreach (var (name, parameter) in peft.named_parameters().Where(p => !p.parameter.is_floating_point()))
        {
            Assert.False(parameter.requires_grad);
            Assert.Null(parameter.grad);
            Assert.True(parameter.equal(stored[name]).all().item<bool>(), $"{name} changed");
        }
    }

    [Theory]
    [InlineData("nf4", ScalarType.Float32)]
    [InlineData("fp4", ScalarType.BFloat16)]
    [InlineData("int8", ScalarType.Float32)]
    public void ForwardAndInputGradientAreThoseOfTheDequantizedWeight(string format, ScalarType compute)
    {
        using var scope = NewDisposeScope();
        torch.manual_seed(5);
        var linear = nn.Linear(40, 24);
        QuantizedLinear layer = format == "int8" ? Linear8bit.FromLinear(linear, compute) : Linear4bit.FromLinear(linear, QuantTypes.Parse(format), true, compute);
        var x = randn(3, 40, requires_grad: true);
        var y = layer.call(x);
        Assert.Equal(ScalarType.Float32, y.dtype);   // the input's dtype, as bitsandbytes returns
        y.pow(2).sum().backward();
        var weight = layer.Dequantize();
        Assert.Equal(compute, weight.dtype);
        var x2 = x.detach().clone().requires_grad_(true);
        var expected = nn.functional.linear(x2.to(compute), weight, linear.bias!.to(compute)).to(ScalarType.Float32);
        expected.pow(2).sum().backward();
        var tolerance = compute == ScalarType.Float32 ? 1e-5 : 1e-2;
        Assert.True(y.allclose(expected, rtol: tolerance, atol: tolerance), "forward");
        Assert.True(x.grad!.allclose(x2.grad!, rtol: tolerance, atol: tolerance), "input gradient");
    }

    [Fact]
    public void PrintTrainableParametersCountsAFourBitWeightAsTwiceItsBytes()
    {
        using var scope = NewDisposeScope();
        var dense = PeftModels.Default.GetPeftModel(Load(null), Lora("q_proj", "v_proj"));
        var fourBit = PeftModels.Default.GetPeftModel(Load(Options("nf4", true)), Lora("q_proj", "v_proj"));
        var eightBit = PeftModels.Default.GetPeftModel(Load(Options("int8", false)), Lora("q_proj", "v_proj"));
        Assert.Equal(dense.GetNbTrainableParameters(), fourBit.GetNbTrainableParameters());
        Assert.Equal(dense.GetNbTrainableParameters(), eightBit.GetNbTrainableParameters());
    }

    [Fact]
    public void AnAdapterTrainedOnAFourBitBaseSavesTheSameKeysAndLoadsOnAFullPrecisionBase()
    {
        using var scope = NewDisposeScope();
        using var dir = new ScratchDirectory();
        torch.manual_seed(2);
        var quantized = PeftModels.Default.GetPeftModel(Load(Options("nf4", true)), Lora("q_proj", "v_proj"));
        using (torch.no_grad())
        {
            foreach (var (_, p) in quantized.TrainableParameters()) p.add_(randn_like(p) * 0.1);
        }
        quantized.SavePretrained(Path.Combine(dir.Path, "q"));
        var dense = PeftModels.Default.GetPeftModel(Load(null), Lora("q_proj", "v_proj"));
        dense.SavePretrained(Path.Combine(dir.Path, "d"));
        var savedQuantized = SafeTensors.Load(Path.Combine(dir.Path, "q", "adapter_model.safetensors"));
        var savedDense = SafeTensors.Load(Path.Combine(dir.Path, "d", "adapter_model.safetensors"));
        Assert.Equal(savedDense.Keys.Order(), savedQuantized.Keys.Order());
        Assert.All(savedQuantized, kv => Assert.Equal(savedDense[kv.Key].shape, kv.Value.shape));

        var reloaded = PeftModels.Default.FromPretrained(Load(null), Path.Combine(dir.Path, "q"));
        var weights = reloaded.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        foreach (var (name, p) in quantized.TrainableParameters()) Assert.True(weights[name].equal(p).all().item<bool>(), name);
    }

    [Fact]
    public void MergingIntoAFourBitLayerQuantizesTheSumAgain()
    {
        using var scope = NewDisposeScope();
        torch.manual_seed(4);
        var peft = PeftModels.Default.GetPeftModel(Load(Options("nf4", true)), Lora("q_proj"));
        using (torch.no_grad())
        {
            foreach (var (_, p) in peft.TrainableParameters()) p.add_(randn_like(p) * 0.3);
        }
        var layer = peft.modules().OfType<LoraLayer>().First();
        var baseLayer = (Linear4bit)layer.BaseLayer;
        var lora = layer.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        var delta = lora["lora_B.default.weight"].matmul(lora["lora_A.default.weight"]) * 2.0;   // scaling = 8 / 4
        var sum = baseLayer.Dequantize() + delta;
        var (expected, _) = QuantState4Bit.Quantize(sum.detach(), QuantType.Nf4, doubleQuant: true);

        peft.Merge();
        Assert.True(baseLayer.PackedWeight.equal(expected).all().item<bool>(), "merged weight = quantize(dequantize(W) + ΔW)");
        Assert.True(baseLayer.State.Nested);
    }

    [Theory]
    [InlineData(ScalarType.Float32)]
    [InlineData(ScalarType.BFloat16)]
    public void MergeAndUnloadToADenseDtypeComputesTheAdaptedModel(ScalarType dtype)
    {
        using var scope = NewDisposeScope();
        torch.manual_seed(6);
        var peft = PeftModels.Default.GetPeftModel(Load(Options("nf4", false)), Lora("q_proj", "v_proj", "up_proj"));
        using (torch.no_grad())
        {
            foreach (var (_, p) in peft.TrainableParameters()) p.add_(randn_like(p) * 0.2);
        }
        peft.eval();
        Tensor adapted;
        using (torch.no_grad()) adapted = peft.call(Inputs()).Logits.to(ScalarType.Float32);

        var quantizedPaths = peft.Model.named_modules().Where(m => m.module is QuantizedLinear).Select(m => m.name.Replace(".base_layer", "")).ToList();
        var merged = peft.MergeAndUnload(dtype);
        Assert.Empty(merged.modules().OfType<QuantizedLinear>());
        Assert.Empty(merged.modules().OfType<IAdapterLayer>());
        var modules = merged.named_modules().ToDictionary(m => m.name, m => m.module);
        Assert.Equal(14, quantizedPaths.Count);
        Assert.All(quantizedPaths, path => Assert.Equal(dtype, ((Linear)modules[path]).weight!.dtype));
        Tensor logits;
        using (torch.no_grad()) logits = merged.call(Inputs()).Logits.to(ScalarType.Float32);
        // float32: the same sums in another order; bfloat16: the merged weights rounded to 8 bits, once per stage (see HalfPrecisionTests).
        var bound = dtype == ScalarType.Float32 ? 1e-4 : (2 * 2 + 2) * Math.Pow(2, -8);
        var scale = adapted.abs().max().item<float>();
        var gap = (logits - adapted).abs().max().item<float>();
        Assert.True(gap <= bound * scale, $"{dtype}: merged logits differ by {gap}, bound {bound * scale}");
    }

    [Fact]
    public void ACheckpointInBitsandbytesFourBitLayoutLoadsAsStored()
    {
        using var scope = NewDisposeScope();
        using var dir = new ScratchDirectory();
        var options = Options("nf4", true);
        var source = Load(null);
        ModelQuantization.Quantize(source, options);
        // What bitsandbytes' Linear4bit._save_to_state_dict writes, and every other weight as it is.
        var state = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        var quantizedPaths = new HashSet<string>();
        foreach (var (path, module) in source.named_modules())
        {
            if (module is not Linear4bit layer) continue;
            quantizedPaths.Add(path);
            foreach (var (key, value) in layer.StateDictAsBitsAndBytes(path + ".")) state[key] = value;
        }
        foreach (var (name, value) in source.state_dict())
        {
            if (!quantizedPaths.Any(p => name.StartsWith(p + ".", StringComparison.Ordinal))) state[name] = value;
        }
        File.Copy(Path.Combine(Llama, "config.json"), dir.File("config.json"));
        SafeTensors.Save(dir.File("model.safetensors"), state, new Dictionary<string, string> { ["format"] = "pt" });

        var json = Encoding.UTF8.GetString(state["model.layers.0.self_attn.q_proj.weight.quant_state.bitsandbytes__nf4"].data<byte>().ToArray());
        Assert.StartsWith("{\"quant_type\": \"nf4\", \"blocksize\": 64, \"dtype\": \"float32\", \"shape\": [32, 32], \"nested_blocksize\": 256, \"nested_dtype\": \"float32\", \"nested_offset\": ", json);
        Assert.Equal(new long[] { 512, 1 }, state["model.layers.0.self_attn.q_proj.weight"].shape);
        Assert.Equal(ScalarType.Byte, state["model.layers.0.self_attn.q_proj.weight.absmax"].dtype);

        var loaded = PeftModels.Default.LoadPretrained(dir.Path, TaskType.CausalLM, new ModelLoadOptions { Quantization = options });
        var layers = loaded.named_modules().Where(m => m.module is Linear4bit).ToDictionary(m => m.name, m => (Linear4bit)m.module);
        Assert.Equal(quantizedPaths.Order(), layers.Keys.Order());
        foreach (var (path, module) in source.named_modules().Where(m => m.module is Linear4bit))
        {
            var expected = (Linear4bit)module;
            Assert.True(layers[path].PackedWeight.equal(expected.PackedWeight).all().item<bool>(), path);
            Assert.True(layers[path].Dequantize().equal(expected.Dequantize()).all().item<bool>(), path);
        }
        source.eval();
        using (torch.no_grad())
        {
            Assert.True(loaded.call(Inputs()).Logits.equal(source.call(Inputs()).Logits).all().item<bool>(), "same logits");
        }
        // Without load_in_4bit the packed bytes do not fit a Linear.
        Assert.Throws<CheckpointException>(() => PeftModels.Default.LoadPretrained(dir.Path, TaskType.CausalLM, new ModelLoadOptions()));
        Assert.Throws<CheckpointException>(() => PeftModels.Default.LoadPretrained(dir.Path, TaskType.CausalLM, new ModelLoadOptions { Quantization = Options("int8", false) }));

        // As published (transformers writes quantization_config into config.json), it loads as stored without being asked.
        var config = JsonNode.Parse(File.ReadAllText(dir.File("config.json")))!.AsObject();
        config["quantization_config"] = JsonNode.Parse("""
            {"quant_method": "bitsandbytes", "load_in_4bit": true, "load_in_8bit": false, "bnb_4bit_quant_type": "nf4",
             "bnb_4bit_use_double_quant": true, "bnb_4bit_compute_dtype": "float32", "bnb_4bit_quant_storage": "uint8",
             "llm_int8_threshold": 6.0, "llm_int8_skip_modules": null, "llm_int8_has_fp16_weight": false}
            """);
        File.WriteAllText(dir.File("config.json"), config.ToJsonString());
        var published = PeftModels.Default.LoadPretrained(dir.Path, TaskType.CausalLM, new ModelLoadOptions());
        using (torch.no_grad())
        {
            Assert.True(published.call(Inputs()).Logits.equal(source.call(Inputs()).Logits).all().item<bool>(), "same logits from quantization_config");
        }
        config["quantization_config"]!["quant_method"] = "gptq";
        File.WriteAllText(dir.File("config.json"), config.ToJsonString());
        Assert.Contains("gptq", Assert.Throws<ModelConfigException>(() => PeftModels.Default.LoadPretrained(dir.Path, TaskType.CausalLM, new ModelLoadOptions())).Message);
    }

    [Fact]
    public void SavingAQuantizedModelWholeIsRefusedAndADenseOneSaves()
    {
        using var scope = NewDisposeScope();
        using var dir = new ScratchDirectory();
        var peft = PeftModels.Default.GetPeftModel(Load(Options("nf4", true)), Lora("q_proj"));
        var error = Assert.Throws<InvalidOperationException>(() => PeftModels.SavePretrained(peft.Model, dir.File("whole"), Llama));
        Assert.Contains("nf4 layers", error.Message);
        PeftModels.SavePretrained(peft.MergeAndUnload(ScalarType.Float32), dir.File("dense"), Llama);
        Assert.Equal(ModelWeights.Load(Llama).Keys.Order(), ModelWeights.Load(dir.File("dense")).Keys.Order());
    }

    [Fact]
    public void QuantizingOnLoadEqualsQuantizingTheLoadedWeights()
    {
        using var scope = NewDisposeScope();
        var options = Options("fp4", true);
        var onLoad = Load(options, ModelDType.BFloat16);
        var after = Load(null, ModelDType.BFloat16);
        ModelQuantization.Quantize(after, options);
        var expected = after.named_modules().Where(m => m.module is Linear4bit).ToDictionary(m => m.name, m => (Linear4bit)m.module);
        foreach (var (path, module) in onLoad.named_modules().Where(m => m.module is Linear4bit))
        {
            var layer = (Linear4bit)module;
            Assert.Equal(ScalarType.BFloat16, layer.State.DType);
            Assert.True(layer.PackedWeight.equal(expected[path].PackedWeight).all().item<bool>(), path);
        }
    }

    [Fact]
    public void HeadsAndSkippedModulesStayInFloatingPoint()
    {
        using var scope = NewDisposeScope();
        var model = Load(Options("nf4", false) with { LlmInt8SkipModules = ["down_proj", "layers.1.self_attn"] });
        var kinds = model.named_modules().ToDictionary(m => m.name, m => m.module);
        Assert.IsType<Linear>(kinds["lm_head"]);
        Assert.IsType<Linear>(kinds["model.layers.0.mlp.down_proj"]);
        Assert.IsType<Linear>(kinds["model.layers.1.self_attn.q_proj"]);
        Assert.IsType<Linear4bit>(kinds["model.layers.0.self_attn.q_proj"]);
        Assert.IsType<Linear4bit>(kinds["model.layers.1.mlp.up_proj"]);
    }

    [Fact]
    public void ContradictoryOptionsAreRefusedByName()
    {
        Assert.Contains("load_in_8bit and load_in_4bit", Assert.Throws<ArgumentException>(() => new QuantizationOptions { LoadIn4Bit = true, LoadIn8Bit = true }.Validate()).Message);
        Assert.Contains("needs load_in_8bit or load_in_4bit", Assert.Throws<ArgumentException>(() => new QuantizationOptions().Validate()).Message);
        Assert.Contains("'int4'", Assert.Throws<ArgumentException>(() => new QuantizationOptions { LoadIn4Bit = true, Bnb4BitQuantType = "int4" }.Validate()).Message);
        Assert.Contains("bnb_4bit_compute_dtype", Assert.Throws<ArgumentException>(() => new QuantizationOptions { LoadIn4Bit = true, Bnb4BitComputeDType = ModelDType.Auto }.Validate()).Message);
        Assert.Contains("bnb_4bit_use_double_quant", Assert.Throws<ArgumentException>(() => new QuantizationOptions { LoadIn8Bit = true, Bnb4BitUseDoubleQuant = true }.Validate()).Message);
        Assert.Throws<ArgumentException>(() => Load(new QuantizationOptions { LoadIn4Bit = true, LoadIn8Bit = true }));
    }

    [Fact]
    public void MethodsAndInitialisationsThatRewriteTheBaseAreRefusedOnAQuantizedBase()
    {
        using var scope = NewDisposeScope();
        var ia3 = Assert.Throws<PeftConfigException>(() => PeftModels.Default.GetPeftModel(Load(Options("nf4", false)),
            new IA3Config { TaskType = TaskType.CausalLM, TargetModules = new[] { "q_proj", "down_proj" }, FeedforwardModules = new[] { "down_proj" } }));
        Assert.Contains("quantized (nf4)", ia3.Message);
        var pissa = Assert.Throws<PeftConfigException>(() => PeftModels.Default.GetPeftModel(Load(Options("int8", false)),
            Lora("q_proj") with { InitLoraWeights = LoraInitWeights.FromJson(JsonSerializer.SerializeToElement("pissa")) }));
        Assert.Contains("int8 base", pissa.Message);
    }

    [Fact]
    public void PrepareForKbitTrainingWidensHalfPrecisionAndMakesTheEmbeddingOutputRequireAGradient()
    {
        using var scope = NewDisposeScope();
        var model = Load(Options("nf4", true, ModelDType.BFloat16), ModelDType.BFloat16);
        var packed = model.named_parameters().Where(p => p.parameter.dtype == ScalarType.Byte).ToDictionary(p => p.name, p => p.parameter.detach().clone());
        using var hook = KbitTraining.PrepareForKbitTraining(model);
        foreach (var (name, p) in model.named_parameters())
        {
            Assert.False(p.requires_grad, name);
            if (p.is_floating_point()) Assert.Equal(ScalarType.Float32, p.dtype);
            else Assert.True(p.equal(packed[name]).all().item<bool>(), name);
        }
        Assert.True(model.InputEmbeddings.call(tensor(new long[] { 1, 2 })).requires_grad);
        Assert.True(model.IsGradientCheckpointing);   // use_gradient_checkpointing defaults to true, as in the reference
        var peft = PeftModels.Default.GetPeftModel(model, Lora("q_proj", "v_proj"));
        peft.train();
        peft.call(Inputs()).Loss!.backward();
        Assert.All(peft.TrainableParameters(), p => Assert.NotNull(p.Parameter.grad));
    }

    [Fact]
    public void PrepareForKbitTrainingWithoutCheckpointingLeavesItOffAndAddsNoHook()
    {
        using var scope = NewDisposeScope();
        var model = Load(Options("nf4", true, ModelDType.BFloat16), ModelDType.BFloat16);
        Assert.Null(KbitTraining.PrepareForKbitTraining(model, useGradientCheckpointing: false));
        Assert.False(model.IsGradientCheckpointing);
        Assert.False(model.InputEmbeddings.call(tensor(new long[] { 1, 2 })).requires_grad);
    }
}
