using System.Text.Json;
using Peft.Methods.FourierFT;
using Peft.Modeling;
using Peft.Tuners;
using TorchSharp;

namespace Peft.Tests.Methods;

/// <summary>FourierFT: seeded spectral entries, the inverse transform, merging, saving and config validation.</summary>
public class FourierFTTests
{
    [Theory]
    [InlineData("gpt2-clm", "mlp.c_proj")]
    [InlineData("llama-clm", "q_proj,v_proj")]
    public void MergedOutputsEqualUnmergedOnes(string model, string targets) =>
        TunerContract.MergeMatchesUnmerged(model, Config(targets));

    [Fact]
    public void OnlyTheSpectrumIsSavedAndTheEntriesAreRedrawnOnLoad()
    {
        var keys = TunerContract.SavedAdapterReloads("llama-clm", Config("q_proj,v_proj") with { RandomLocSeed = 31 });
        Assert.Equal(4, keys.Count);
        Assert.Contains("base_model.model.model.layers.1.self_attn.v_proj.fourierft_spectrum", keys);
    }

    [Fact]
    public void EntriesAreDistinctSeededAndInRange()
    {
        using var scope = torch.NewDisposeScope();
        static FourierFTLayer Layer(long seed)
        {
            var layer = new FourierFTLayer(torch.nn.Linear(6, 5));
            layer.AddAdapter("default", 12, new FourierFTConfig { RandomLocSeed = seed });
            return layer;
        }
        var (rows, columns) = Layer(3).Entries("default");
        var flat = (rows * 6 + columns).data<long>().ToArray();
        Assert.Equal(12, flat.Distinct().Count());
        Assert.All(flat, i => Assert.InRange(i, 0, 29));
        Assert.Equal(flat, (Layer(3).Entries("default").Rows * 6 + Layer(3).Entries("default").Columns).data<long>().ToArray());
        var other = Layer(4).Entries("default");
        Assert.NotEqual(flat, (other.Rows * 6 + other.Columns).data<long>().ToArray());
    }

    [Fact]
    public void TheUpdateIsTheScaledRealInverseTransformOfTheSparseSpectrum()
    {
        using var scope = torch.NewDisposeScope();
        torch.manual_seed(2);
        var linear = torch.nn.Linear(4, 3, hasBias: false);
        var layer = new FourierFTLayer(linear);
        layer.AddAdapter("default", 5, new FourierFTConfig { Scaling = 10, RandomLocSeed = 1 });
        layer.ActiveAdapters = ["default"];
        var spectrum = layer.named_parameters().Single(p => p.name == "fourierft_spectrum.default").parameter;
        var (rows, columns) = layer.Entries("default");

        // ifft2 by its definition: ΔW[m, n] = Re Σ S[k, l] e^{2πi(km/3 + ln/4)} / 12.
        var expected = new double[3, 4];
        var r = rows.data<long>().ToArray();
        var c = columns.data<long>().ToArray();
        var s = spectrum.data<float>().ToArray();
        for (int m = 0; m < 3; m++)
        for (int n = 0; n < 4; n++)
        for (int j = 0; j < 5; j++)
            expected[m, n] += s[j] * Math.Cos(2 * Math.PI * (r[j] * m / 3.0 + c[j] * n / 4.0)) / 12 * 10;
        var x = torch.eye(4);
        var update = (layer.call(x) - linear.call(x)).T; // (out, in)
        for (int m = 0; m < 3; m++)
        for (int n = 0; n < 4; n++)
            Assert.Equal(expected[m, n], update[m, n].item<float>(), 4);
    }

    [Fact]
    public void ZeroInitIsTheIdentityAndPatternsSetPerModuleFrequencies()
    {
        using var scope = torch.NewDisposeScope();
        var config = Config("q_proj,v_proj") with
        {
            InitWeights = true,
            NFrequencyPattern = new Dictionary<string, int> { ["layers.1.self_attn.v_proj"] = 3 },
        };
        var peft = TunerContract.Attach("llama-clm", config, out var inputs, out var baseLogits);
        peft.eval();
        TunerContract.AssertClose(baseLogits, peft.call(inputs).Logits, 1e-6);
        var sizes = peft.TrainableParameters().ToDictionary(p => p.Name, p => p.Parameter.shape[0]);
        Assert.Equal(3, sizes["base_model.model.model.layers.1.self_attn.v_proj.fourierft_spectrum.default"]);
        Assert.Equal(16, sizes["base_model.model.model.layers.0.self_attn.v_proj.fourierft_spectrum.default"]);
    }

    [Fact]
    public void MoreFrequenciesThanEntriesIsRefused()
    {
        using var scope = torch.NewDisposeScope();
        var error = Assert.Throws<PeftConfigException>(() => TunerContract.Attach("llama-clm", Config("v_proj") with { NFrequency = 16 * 32 + 1 }, out _, out _));
        Assert.Contains("n_frequency", error.Message);
    }

    [Theory]
    [InlineData("""{"peft_type": "FOURIERFT", "n_frequency": 0}""", "`n_frequency`")]
    [InlineData("""{"peft_type": "FOURIERFT", "random_loc_seed": null}""", "`random_loc_seed`")]
    [InlineData("""{"peft_type": "FOURIERFT", "bias": "fourier_only"}""", "`bias`")]
    [InlineData("""{"peft_type": "FOURIERFT", "target_modules": ".*q_proj", "layers_pattern": "layers"}""", "`layers_pattern`")]
    [InlineData("""{"peft_type": "FOURIERFT", "n_frequency_pattern": {"q_proj": -2}}""", "`n_frequency_pattern`")]
    public void InvalidConfigsAreRefusedNamingTheField(string json, string field)
    {
        using var document = JsonDocument.Parse(json);
        var config = new FourierFTMethod().ParseConfig(document.RootElement, "adapter_config.json");
        var error = Assert.Throws<PeftConfigException>(config.Validate);
        Assert.Contains(field, error.Message);
    }

    private static FourierFTConfig Config(string targets) => new()
    {
        TaskType = TaskType.CausalLM,
        TargetModules = TargetModules.FromNames(targets.Split(',')),
        NFrequency = 16,
        Scaling = 100,
    };
}
